"""What the masters show from outside: who holds the virtual IP, who runs the DAG
processor's parser (the holder of its lock in etcd)."""

from __future__ import annotations

import requests

from clusterops.lab.hosts import LabSpec

from .conftest import lab_host


def vip_holders(lab: LabSpec, vip: str, names: list[str] | None = None) -> list[str]:
    """The masters (of `names`, default all; each must answer SSH) that have the virtual
    IP on an interface."""
    found = []
    for name in lab.group("airflow_master") if names is None else names:
        addresses = lab_host(lab, name).check_output("ip -o -4 address show")
        if f" {vip}/" in addresses:
            found.append(name)
    return found


def parsing(lab: LabSpec, names: list[str]) -> list[str]:
    """The masters of `names` whose DAG processor runs (holds the lock), not only waits."""
    running = []
    for name in names:
        host = lab_host(lab, name)
        with host.sudo():
            processes = host.check_output("ps -eo args")
        # The runner's own command line names the parser too: leave it out.
        lines = [line for line in processes.splitlines() if "airflow-leader" not in line]
        if any("airflow dag-processor" in line for line in lines):
            running.append(name)
    return running


def health_answers(url: str) -> bool | None:
    """True once GET <url>/api/v2/monitor/health answers 200 within 2 s."""
    try:
        response = requests.get(f"{url}/api/v2/monitor/health", timeout=2)
    except requests.RequestException:
        return None
    return True if response.ok else None
