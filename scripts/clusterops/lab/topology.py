"""The lab's hosts as the lab inventory describes them, and resizing that inventory."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from clusterops.console import Failure
from clusterops.inventory import Inventory
from clusterops.lab.hosts import HostSpec, LabSpec
from clusterops.runner import inventory_hostvars

# Groups whose size `lab.py up --masters/--workers` may change: host name prefix, offset of
# the first address in the lab subnet (host N gets offset + N) and the largest size.
RESIZABLE = {
    "airflow_master": ("master", 30, 9),
    "airflow_worker": ("worker", 100, 99),
}


def lab_spec(inventory: Path) -> LabSpec:
    """Every host of the inventory becomes a lab host at its ansible_host address."""
    hostvars, groups = inventory_hostvars(inventory)
    names = groups.get("all", [])
    if not names:
        raise Failure(f"inventory {inventory} lists no hosts", 2)
    first = hostvars.get(names[0], {})
    for variable in ("lab_name", "lab_subnet", "ansible_user"):
        if not first.get(variable):
            raise Failure(
                f"inventory {inventory} does not set '{variable}' (group_vars/all/lab.yml)", 2
            )
    try:
        subnet = ipaddress.IPv4Network(first["lab_subnet"])
    except ValueError as error:
        raise Failure(f"lab_subnet in {inventory}: {error}", 2) from error
    hosts = []
    for name in names:
        address = hostvars.get(name, {}).get("ansible_host")
        if not address:
            raise Failure(f"lab host '{name}' has no ansible_host in {inventory}", 2)
        hosts.append(HostSpec(name, str(address)))
    return LabSpec(
        str(first["lab_name"]),
        subnet,
        tuple(hosts),
        str(first["ansible_user"]),
        groups={group: tuple(members) for group, members in groups.items()},
    )


def resize(hosts_file: Path, subnet: ipaddress.IPv4Network, group: str, size: int) -> list[str]:
    """Give `group` exactly `size` numbered hosts; return the names of removed hosts."""
    prefix, offset, largest = RESIZABLE[group]
    if not 1 <= size <= largest:
        raise Failure(f"{group} size must be between 1 and {largest}, not {size}", 2)
    inventory = Inventory(hosts_file)
    numbered = re.compile(rf"^{prefix}-(\d+)$")
    current = {int(m.group(1)) for h in inventory.group_hosts(group) if (m := numbered.match(h))}
    removed = []
    for number in sorted(current, reverse=True):
        if number > size:
            inventory.remove_host(group, f"{prefix}-{number}")
            removed.append(f"{prefix}-{number}")
    for number in range(1, size + 1):
        if number not in current:
            address = subnet.network_address + offset + number
            inventory.add_host(group, f"{prefix}-{number}", {"ansible_host": str(address)})
    inventory.save()
    return removed
