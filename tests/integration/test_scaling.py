"""Scale out and in on the lab with the real scripts: add worker-3, give it tasks, then
remove it while it runs some. No task may fail, be retried or lose its log.

The module leaves the lab as it found it: worker-3 is removed again (with --force only if
a test failed half-way), and hosts.yml must end byte-identical.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from clusterops.cluster import AirflowAPI, Endpoints, Flower, wait_for
from clusterops.lab.hosts import LabSpec
from clusterops.paths import LAB_INVENTORY, PROJECT_ROOT
from clusterops.workers import Exit

from .conftest import lab_host

pytestmark = pytest.mark.lab

HOSTS_FILE = LAB_INVENTORY / "hosts.yml"
NEW = "worker-3"
NEW_ADDRESS = "172.30.89.103"
LONG_DAG = "long_tasks"


def script(*argv: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run scripts/<argv[0]> as a user would; its output is shown when a test fails."""
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / argv[0]), *argv[1:]],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    print(f"$ {' '.join(argv)}  -> exit {result.returncode}\n{result.stdout}{result.stderr}")
    return result


@contextmanager
def only_consuming(flower: Flower, worker: str, others: list[str]) -> Iterator[None]:
    """Let only `worker` take new tasks for a while (the others' queues are cancelled)."""
    for other in others:
        flower.cancel_consumer(f"celery@{other}", "default")
    try:
        yield
    finally:
        for other in others:
            flower.add_consumer(f"celery@{other}", "default")


def run_and_wait(api: AirflowAPI, conf: dict[str, int]) -> tuple[str, list[dict[str, Any]]]:
    wait_for(f"DAG {LONG_DAG} to be parsed", lambda: api.dag(LONG_DAG), timeout=120)
    run_id = api.trigger(LONG_DAG, conf)
    run = api.wait_for_run(LONG_DAG, run_id, timeout=600)
    return str(run["state"]), api.task_instances(LONG_DAG, run_id)


def test_unreachable_address_fails_and_leaves_the_inventory_untouched() -> None:
    before = HOSTS_FILE.read_bytes()
    result = script("add_worker.py", "worker-9", "--address", "172.30.89.199", timeout=120)
    assert result.returncode == Exit.UNREACHABLE
    assert "cannot log in to worker-9 at 172.30.89.199" in result.stderr
    assert HOSTS_FILE.read_bytes() == before


@pytest.fixture(scope="module")
def original_hosts_file() -> Iterator[bytes]:
    """hosts.yml before worker-3 came; afterwards worker-3 is gone whatever happened."""
    before = HOSTS_FILE.read_bytes()
    yield before
    if HOSTS_FILE.read_bytes() != before:
        script("remove_worker.py", NEW, "--lab", "--force", "--timeout", "60")


@pytest.fixture(scope="module")
def added(original_hosts_file: bytes, lab: LabSpec) -> subprocess.CompletedProcess[str]:
    result = script("add_worker.py", NEW, "--lab")
    assert result.returncode == 0, result.stderr
    return result


def test_added_worker_is_in_the_inventory_and_admitted(
    added: subprocess.CompletedProcess[str], lab: LabSpec, master: str
) -> None:
    assert f"{NEW}:\n              ansible_host: {NEW_ADDRESS}" in HOSTS_FILE.read_text()
    assert f"celery@{NEW} is up and consuming" in added.stdout
    for member in lab.group("postgres"):  # Patroni writes pg_hba.conf on every member
        postgres = lab_host(lab, member)
        with postgres.sudo():
            pg_hba = postgres.file("/etc/postgresql/15/main/pg_hba.conf").content_string
        assert NEW_ADDRESS in pg_hba, member
    assert f"{NEW_ADDRESS} {NEW}" in lab_host(lab, master).file("/etc/hosts").content_string


def test_added_worker_takes_tasks(
    added: subprocess.CompletedProcess[str], api: AirflowAPI, endpoints: Endpoints
) -> None:
    with only_consuming(endpoints.flower, NEW, ["worker-1", "worker-2"]):
        state, tis = run_and_wait(api, {"tasks": 3, "seconds": 1})
    assert state == "success"
    assert {ti["hostname"] for ti in tis} == {NEW}


def test_removing_a_busy_worker_loses_no_task(
    added: subprocess.CompletedProcess[str],
    original_hosts_file: bytes,
    api: AirflowAPI,
    endpoints: Endpoints,
) -> None:
    run_id = api.trigger(LONG_DAG, {"tasks": 6, "seconds": 40})

    def running_on_new() -> list[dict[str, Any]] | None:
        tis = api.task_instances(LONG_DAG, run_id)
        busy = [t for t in tis if t["hostname"] == NEW and t["state"] == "running"]
        return busy if len(busy) >= 2 else None

    with only_consuming(endpoints.flower, NEW, ["worker-1", "worker-2"]):
        wait_for(f"2 tasks running on {NEW}", running_on_new, timeout=180)

    result = script("remove_worker.py", NEW, "--lab", "--timeout", "300")
    assert result.returncode == 0, result.stderr
    assert "no task was killed" in result.stdout

    run = api.wait_for_run(LONG_DAG, run_id, timeout=300)
    tis = api.task_instances(LONG_DAG, run_id)
    assert run["state"] == "success"
    assert {(t["state"], t["try_number"]) for t in tis} == {("success", 1)}
    on_new = [t for t in tis if t["hostname"] == NEW and t["task_id"] == "hold"]
    assert len(on_new) >= 2
    for ti in on_new:  # the logs came to the masters before the host went
        assert "done after 40 s" in api.task_log(ti)
    assert endpoints.flower.alive().get(f"celery@{NEW}") is False
    assert HOSTS_FILE.read_bytes() == original_hosts_file
