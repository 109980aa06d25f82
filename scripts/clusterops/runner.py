"""Calls into Ansible through ansible-runner's Python API (one place for all of them)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
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
        action="list",
        inventories=[str(inventory)],
        response_format="json",
        quiet=True,
        envvars=_settings(),
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


Inventories = Path | list[Path]


def _sources(inventory: Inventories) -> list[str]:
    """Inventory sources for ansible-runner: one path, or several merged in order."""
    paths = inventory if isinstance(inventory, list) else [inventory]
    return [str(path.resolve()) for path in paths]


@dataclass(frozen=True)
class HostFailure:
    """One host's failed or unreachable result: where it happened and Ansible's message."""

    host: str
    task: str
    outcome: str  # "failed" or "unreachable"
    message: str

    def __str__(self) -> str:
        return f"task '{self.task}' on {self.host}: {self.message}"


class PlaybookFailure(Failure):
    """A playbook run that failed; `failures` says on which host, in which task and why."""

    def __init__(self, playbook: str, rc: int, failures: list[HostFailure]) -> None:
        detail = "; ".join(str(f) for f in failures) or f"ansible-playbook exited with {rc}"
        super().__init__(f"{playbook} failed: {detail}")
        self.failures = failures


def run_module(
    inventory: Inventories, pattern: str, module: str, args: str = "", *, become: bool = False
) -> dict[str, tuple[str, dict[str, Any]]]:
    """Run one module on the hosts matching `pattern`; per host: outcome and result.

    The outcome is "ok", "failed" or "unreachable". `become` runs it as root (sudo).
    """
    results: dict[str, tuple[str, dict[str, Any]]] = {}

    def on_event(event: dict[str, Any]) -> bool:
        outcome = OUTCOMES.get(event.get("event", ""))
        if outcome:
            data = event["event_data"]
            results[data["host"]] = (outcome, data.get("res", {}))
        return False

    with tempfile.TemporaryDirectory(prefix="clusterops-") as private:
        ansible_runner.run(
            private_data_dir=private,
            inventory=_sources(inventory),
            host_pattern=pattern,
            module=module,
            module_args=args,
            cmdline="--become" if become else None,
            envvars=_settings(),
            project_dir=str(PROJECT_ROOT),
            event_handler=on_event,
            quiet=True,
        )
    return results


OUTCOMES = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
}


def run_playbook(
    inventory: Inventories,
    playbook: str,
    *,
    limit: str | None = None,
    extravars: dict[str, Any] | None = None,
    quiet: bool = False,
    tags: str | None = None,
) -> dict[str, dict[str, int]]:
    """Run a playbook of the project; per host, its recap counts (ok, changed, failures...).

    Progress is printed one line per task with the time since the start, unless `quiet`.
    Raises PlaybookFailure naming the failed task and host when the run fails.
    """
    failures: list[HostFailure] = []
    stats: dict[str, dict[str, int]] = {}
    started = time.monotonic()

    def on_event(event: dict[str, Any]) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data", {})
        if kind == "playbook_on_stats":
            for counter in ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored"):
                for host, count in (data.get(counter) or {}).items():
                    stats.setdefault(host, {})[counter] = count
        elif kind == "playbook_on_play_start" and not quiet:
            print(f"  {time.monotonic() - started:5.0f}s  play: {data.get('play', '')}", flush=True)
        elif kind == "playbook_on_task_start" and not quiet:
            print(f"  {time.monotonic() - started:5.0f}s    {data.get('task', '')}", flush=True)
        elif OUTCOMES.get(kind) in ("failed", "unreachable") and not data.get("ignore_errors"):
            res = data.get("res", {})
            failures.append(
                HostFailure(
                    host=str(data.get("host")),
                    task=str(data.get("task")),
                    outcome=OUTCOMES[kind],
                    message=str(res.get("msg", "") or res.get("stderr", "")).strip(),
                )
            )
        return False  # keep no event files on disk

    with tempfile.TemporaryDirectory(prefix="clusterops-") as private:
        run = ansible_runner.run(
            private_data_dir=private,
            inventory=_sources(inventory),
            playbook=str(PROJECT_ROOT / playbook),
            limit=limit,
            tags=tags,
            extravars=extravars or {},
            envvars=_settings(),
            project_dir=str(PROJECT_ROOT),
            event_handler=on_event,
            quiet=True,
        )
    if run.rc != 0:
        raise PlaybookFailure(playbook, run.rc, failures)
    return stats
