"""Calls into Ansible through ansible-runner's Python API (one place for all of them)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import ansible_runner

from clusterops.console import Failure

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
