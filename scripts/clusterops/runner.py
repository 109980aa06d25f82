"""Calls into Ansible through ansible-runner's Python API (one place for all of them)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import ansible_runner

from clusterops.console import Failure
from clusterops.paths import PROJECT_ROOT

# ansible-runner starts ansible-playbook & co. from PATH: make it find the ones installed
# beside this interpreter (.venv/bin) even when the virtualenv is not activated.
_BIN = str(Path(sys.executable).parent)
if _BIN not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = os.pathsep.join([_BIN, os.environ.get("PATH", "")])


def inventory_hostvars(inventory: Path) -> tuple[dict[str, dict[str, Any]], dict[str, list[str]]]:
    """Every host's variables (group_vars merged in) and every group's hosts.

    Runs `ansible-inventory --list`, so any inventory Ansible can read works here.
    """
    out, err = ansible_runner.get_inventory(
        action="list", inventories=[str(inventory)], response_format="json", quiet=True
    )
    if not isinstance(out, dict):
        try:
            out = json.loads(out)
        except (TypeError, ValueError):
            raise Failure(f"cannot read inventory {inventory}: {str(err).strip()}") from None
    hostvars: dict[str, dict[str, Any]] = out.get("_meta", {}).get("hostvars", {})
    groups: dict[str, list[str]] = {}

    def walk(group: str) -> list[str]:
        if group not in groups:
            node = out.get(group, {})
            members = list(node.get("hosts", []))
            for child in node.get("children", []):
                members.extend(h for h in walk(child) if h not in members)
            groups[group] = members
        return groups[group]

    walk("all")
    return hostvars, groups


def _settings() -> dict[str, str]:
    """Environment for every run: the project's ansible.cfg, wherever the run happens."""
    return {"ANSIBLE_CONFIG": str(PROJECT_ROOT / "ansible.cfg")}


def run_module(
    inventory: Path, pattern: str, module: str, args: str = ""
) -> dict[str, tuple[str, dict[str, Any]]]:
    """Run one module on the hosts matching `pattern`; per host: outcome and result.

    The outcome is "ok", "failed" or "unreachable".
    """
    outcomes = {
        "runner_on_ok": "ok",
        "runner_on_failed": "failed",
        "runner_on_unreachable": "unreachable",
    }
    with tempfile.TemporaryDirectory(prefix="clusterops-") as private:
        run = ansible_runner.run(
            private_data_dir=private,
            inventory=str(inventory.resolve()),
            host_pattern=pattern,
            module=module,
            module_args=args,
            envvars=_settings(),
            project_dir=str(PROJECT_ROOT),
            quiet=True,
        )
        results: dict[str, tuple[str, dict[str, Any]]] = {}
        for event in run.events:
            outcome = outcomes.get(event.get("event", ""))
            if outcome:
                data = event["event_data"]
                results[data["host"]] = (outcome, data.get("res", {}))
    return results


def run_playbook(
    inventory: Path,
    playbook: str,
    limit: str | None = None,
    extravars: dict[str, Any] | None = None,
    quiet: bool = False,
) -> dict[str, dict[str, int]]:
    """Run a playbook of the project; per host, its recap counts (ok, changed, failures...).

    Progress is printed one line per task, unless `quiet`. Raises Failure naming the
    failed task and host when the run fails.
    """
    failures: list[str] = []
    stats: dict[str, dict[str, int]] = {}

    def on_event(event: dict[str, Any]) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data", {})
        if kind == "playbook_on_stats":
            for counter in ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored"):
                for host, count in (data.get(counter) or {}).items():
                    stats.setdefault(host, {})[counter] = count
        elif kind == "playbook_on_task_start" and not quiet:
            print(f"    {data.get('task', '')}", flush=True)
        elif kind in ("runner_on_failed", "runner_on_unreachable") and not data.get(
            "ignore_errors"
        ):
            message = data.get("res", {}).get("msg", "")
            failures.append(f"task '{data.get('task')}' on {data.get('host')}: {message}")
        return False  # keep no event files on disk

    with tempfile.TemporaryDirectory(prefix="clusterops-") as private:
        run = ansible_runner.run(
            private_data_dir=private,
            inventory=str(inventory.resolve()),
            playbook=str(PROJECT_ROOT / playbook),
            limit=limit,
            extravars=extravars or {},
            envvars=_settings(),
            project_dir=str(PROJECT_ROOT),
            event_handler=on_event,
            quiet=True,
        )
    if run.rc != 0:
        detail = "; ".join(failures) or f"ansible-playbook exited with {run.rc}"
        raise Failure(f"{playbook} failed: {detail}")
    return stats
