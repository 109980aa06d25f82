"""One lab host more or less: what `add_worker.py --lab` and `remove_worker.py --lab` use."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from clusterops.console import Failure
from clusterops.lab import engine, hosts, image, topology


def default_address(inventory: Path, group: str, name: str) -> str | None:
    """The address `lab.py up` would give host `name` of `group` (worker-3 -> .103)."""
    if group not in topology.RESIZABLE:
        return None
    prefix, offset, largest = topology.RESIZABLE[group]
    match = re.fullmatch(rf"{prefix}-(\d+)", name)
    if not match or not 1 <= int(match.group(1)) <= largest:
        return None
    subnet = topology.lab_spec(inventory).subnet
    return str(subnet.network_address + offset + int(match.group(1)))


def create(inventory: Path, name: str, address: str) -> None:
    """Start a lab host `name` at `address` beside the inventory's hosts (pins its key)."""
    spec = topology.lab_spec(inventory)
    if any(h.name == name for h in spec.hosts):
        raise Failure(f"lab host '{name}' is already in {inventory}", 3)
    spec = replace(spec, hosts=(*spec.hosts, hosts.HostSpec(name, address)))
    client = engine.ensure_engine()
    hosts.up(client, spec, image.ensure_image(client, image.recipe_for()))


def delete(inventory: Path, name: str) -> None:
    """Remove lab host `name`'s container (a no-op when there is none)."""
    spec = topology.lab_spec(inventory)
    client = engine.connect()
    if client is not None:
        hosts.remove_hosts(client, spec, [name])
