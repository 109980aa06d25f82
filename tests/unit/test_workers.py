"""add_worker/remove_worker without a cluster: checks, exit codes, task names, draining."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from clusterops import runner, worker_cli
from clusterops.cluster import Endpoints
from clusterops.console import Failure
from clusterops.inventory import Inventory
from clusterops.lab import members
from clusterops.runner import HostFailure
from clusterops.scale_out import ssh_exit_code
from clusterops.workers import (
    Drain,
    Exit,
    WorkerReport,
    WorkerSpec,
    check_known,
    check_new,
    running_task,
)

TOKEN = "eyJhbGciOiJIUzUxMiJ9.c2VjcmV0.c2lnbmF0dXJl"
# What Celery reports for an Airflow task: a shortened repr of the workload, token first.
ARGS = (
    f'(\'{{"token":"{TOKEN}","dag_rel_path":"long_tasks.py","ti":{{"id":"01a",'
    '"task_id":"hold","dag_id":"long_tasks","run_id":"manual__2026-11-24","try_number":1,'
    '"map_index":3,"hostname":"","priority...\', ...'
)


@pytest.fixture(autouse=True)
def _keep_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLIs export the vault password file for Ansible: undone after each test."""
    # Set first: delenv of a variable that is not set records nothing to undo.
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", "")
    monkeypatch.delenv("ANSIBLE_VAULT_PASSWORD_FILE")


def address_refused(address: str) -> str:
    """The message, as a pattern, that refuses `address` for --address."""
    return re.escape(
        "--address must be an IPv4 or IPv6 address (pg_hba.conf and the allow-lists are built "
        f"from it), not '{address}'"
    )


class Reached(Exception):
    """The CLI went past its checks, to the cluster or the inventory's hosts."""


@pytest.fixture
def nothing_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Anything past the checks raises Reached: no Ansible run, no Flower, no cluster."""

    def reached(*args: object, **kwargs: object) -> None:
        raise Reached

    monkeypatch.setattr(Endpoints, "from_inventory", reached)
    monkeypatch.setattr(runner, "run_playbook", reached)
    monkeypatch.setattr(runner, "run_module", reached)
    monkeypatch.setattr(members, "create", reached)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (WorkerSpec("Worker_3", "10.0.0.3"), "invalid worker name 'Worker_3'"),
        (WorkerSpec("worker-3", "10.0.0.300"), address_refused("10.0.0.300")),
        (WorkerSpec("worker-3", "bad host!"), address_refused("bad host!")),
        (WorkerSpec("worker-3", "db.example.com"), address_refused("db.example.com")),
        (WorkerSpec("worker-3", "fe80::1%eth0"), address_refused("fe80::1%eth0")),
        (WorkerSpec("worker-3", "10.0.1.0/24"), address_refused("10.0.1.0/24")),
        (WorkerSpec("worker-3", "10.0.0.3", ("default", "a b")), "'a b' must be 1 to 200"),
        (WorkerSpec("worker-3", "10.0.0.3", ("q", "q")), "lists a queue twice"),
        (WorkerSpec("worker-3", "10.0.0.3", concurrency=0), "from 1 to 256 .got 0"),
        (WorkerSpec("worker-3", "10.0.0.3", concurrency=512), "from 1 to 256 .got 512"),
        (WorkerSpec("worker-3", "10.0.0.3", user="root;id"), "invalid SSH user"),
    ],
)
def test_bad_settings_are_named(spec: WorkerSpec, message: str) -> None:
    with pytest.raises(Failure, match=message) as caught:
        spec.validate()
    assert caught.value.exit_code == Exit.INVALID


@pytest.mark.parametrize("address", ["10.0.1.23", "fd00::17"])
def test_good_settings_pass(address: str) -> None:
    spec = WorkerSpec("worker-3", address, ("default", "heavy.io"), 16, "ubuntu")
    spec.validate()
    assert spec.host_vars() == {
        "ansible_host": address,
        "ansible_user": "ubuntu",
        "airflow_worker_queues": ["default", "heavy.io"],
        "airflow_worker_concurrency": 16,
    }


def test_only_given_settings_reach_the_inventory() -> None:
    assert WorkerSpec("worker-3", "10.0.1.23").host_vars() == {"ansible_host": "10.0.1.23"}


def test_existing_name_and_address_are_refused(lab_inventory: Path) -> None:
    inventory = Inventory(lab_inventory / "hosts.yml")
    with pytest.raises(Failure, match="'worker-2' is already in") as caught:
        check_new(inventory, WorkerSpec("worker-2", "172.30.89.150"))
    assert caught.value.exit_code == Exit.NAME_EXISTS
    with pytest.raises(Failure, match=r"172\.30\.89\.11 is already host 'data-1'") as caught:
        check_new(inventory, WorkerSpec("worker-3", "172.30.89.11"))
    assert caught.value.exit_code == Exit.NAME_EXISTS
    check_new(inventory, WorkerSpec("worker-3", "172.30.89.103"))


def test_unknown_worker_is_refused_with_the_workers_listed(lab_inventory: Path) -> None:
    inventory = Inventory(lab_inventory / "hosts.yml")
    with pytest.raises(Failure, match=r"workers: worker-1, worker-2") as caught:
        check_known(inventory, "master-1")
    assert caught.value.exit_code == Exit.NAME_UNKNOWN
    check_known(inventory, "worker-2")


@pytest.mark.parametrize(
    ("outcome", "message", "code"),
    [
        (
            "unreachable",
            "ssh: connect to host 10.0.0.9 port 22: No route to host",
            Exit.UNREACHABLE,
        ),
        ("unreachable", "ssh: connect to host 10.0.0.9 port 22: Connection timed out", 5),
        ("unreachable", "admin@10.0.0.9: Permission denied (publickey).", Exit.SSH_AUTH),
        ("unreachable", "Host key verification failed.", Exit.SSH_AUTH),
        ("failed", "/usr/bin/python3: not found", Exit.FAILED),
    ],
)
def test_ssh_problems_get_their_exit_code(outcome: str, message: str, code: int) -> None:
    assert ssh_exit_code(HostFailure("worker-3", "ping", outcome, message)) == code


def test_running_task_is_named_without_its_token() -> None:
    task = running_task({"id": "c1", "name": "execute_workload", "args": ARGS, "time_start": 100})
    assert task.label == "long_tasks.hold[3] run manual__2026-11-24 try 1"
    assert TOKEN not in repr(task)
    assert task.describe(now=130.0) == f"{task.label} (running 30s)"


def test_unknown_task_arguments_fall_back_to_the_celery_id() -> None:
    task = running_task({"id": "c2", "name": "other", "args": "(1, 2)"})
    assert task.label == "Celery task other c2"
    assert task.describe(now=0) == "Celery task other c2 (waiting in the worker)"


def test_worker_report_counts_reserved_tasks() -> None:
    report = WorkerReport.parse(
        "celery@worker-3",
        {
            "active_queues": [{"name": "default"}, {"name": "heavy"}],
            "active": [{"id": "a", "args": ARGS, "time_start": 1}],
            "reserved": [{"id": "r", "args": ARGS}],
        },
    )
    assert report.queues == ["default", "heavy"]
    assert [t.celery_id for t in report.tasks] == ["a", "r"]


class FakeFlower:
    """Flower as the drain sees it: a worker whose tasks end after a number of polls."""

    def __init__(self, polls_until_idle: int) -> None:
        self.polls_left = polls_until_idle
        self.calls: list[tuple[str, str]] = []

    def worker(self, name: str) -> dict[str, Any] | None:
        busy = self.polls_left > 0
        self.polls_left -= 1
        active = [{"id": "a", "args": ARGS, "time_start": 1.0}] if busy else []
        return {"stats": {}, "active_queues": [{"name": "default"}], "active": active}

    def cancel_consumer(self, name: str, queue: str) -> None:
        self.calls.append(("cancel", queue))

    def add_consumer(self, name: str, queue: str) -> None:
        self.calls.append(("add", queue))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def drain_for(flower: FakeFlower, timeout: float) -> Drain:
    clock = FakeClock()
    return Drain(flower, "celery@worker-3", timeout, 2.0, clock.time, clock.sleep)  # type: ignore[arg-type]


def test_drain_waits_until_the_worker_is_idle(capsys: pytest.CaptureFixture[str]) -> None:
    flower = FakeFlower(polls_until_idle=3)
    drain = drain_for(flower, timeout=60)
    report = WorkerReport.parse("celery@worker-3", flower.worker("celery@worker-3") or {})
    drain.stop_consuming(report)
    assert drain.wait() == []
    assert flower.calls == [("cancel", "default")]
    assert "long_tasks.hold[3]" in capsys.readouterr().out


def test_drain_timeout_returns_what_still_runs_and_resume_undoes_the_cancel() -> None:
    flower = FakeFlower(polls_until_idle=100)
    drain = drain_for(flower, timeout=10)
    drain.stop_consuming(WorkerReport("celery@worker-3", ["default", "heavy"]))
    left = drain.wait()
    assert [t.label for t in left] == ["long_tasks.hold[3] run manual__2026-11-24 try 1"]
    assert 5 <= flower.polls_left < 100  # polled every 2 s for 10 s, then gave up
    drain.resume()
    assert flower.calls[-2:] == [("add", "default"), ("add", "heavy")]
    assert drain.cancelled == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["worker-3"], "--address is needed for 'worker-3'"),
        (["Worker-3", "--address", "10.0.0.3"], "invalid worker name"),
    ],
)
def test_add_arguments_are_checked_before_anything_runs(argv: list[str], message: str) -> None:
    with pytest.raises(Failure, match=message) as caught:
        worker_cli.add_main(argv)
    assert caught.value.exit_code == Exit.INVALID


@pytest.mark.parametrize(
    "argv",
    [["worker-3", "--address", "10.0.0.3", "--concurrency", "many"], []],
)
def test_malformed_arguments_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        worker_cli.add_main(argv)
    assert caught.value.code == Exit.INVALID


def test_remove_refuses_the_last_worker(lab_inventory: Path) -> None:
    hosts = lab_inventory / "hosts.yml"
    inventory = Inventory(hosts)
    inventory.remove_host("airflow_worker", "worker-2")
    inventory.save()
    before = hosts.read_bytes()
    with pytest.raises(Failure, match="worker-1 is the last worker") as caught:
        worker_cli.remove_main(["worker-1", "-i", str(lab_inventory)])
    assert caught.value.exit_code == Exit.INVALID
    assert hosts.read_bytes() == before


def test_queues_option_splits_on_commas() -> None:
    args = worker_cli.add_parser().parse_args(["w-1", "--queues", "default, heavy"])
    assert args.queues == ("default", "heavy")


def test_the_lab_default_address_passes_the_address_check(lab_inventory: Path) -> None:
    address = members.default_address(lab_inventory, "airflow_worker", "worker-3")
    assert address == "172.30.89.103"
    WorkerSpec("worker-3", address).validate()


@pytest.mark.usefixtures("nothing_runs")
@pytest.mark.parametrize("address", ["db.example.com", "worker-3", "fd00::17%eth0"])
def test_add_refuses_a_name_for_address_and_changes_nothing(
    lab_inventory: Path, address: str
) -> None:
    hosts = lab_inventory / "hosts.yml"
    before = hosts.read_bytes()
    with pytest.raises(Failure, match=address_refused(address)) as caught:
        worker_cli.add_main(["worker-3", "--address", address, "-i", str(lab_inventory)])
    assert caught.value.exit_code == Exit.INVALID
    assert hosts.read_bytes() == before


@pytest.mark.usefixtures("nothing_runs")
def test_add_takes_an_ipv6_address(lab_inventory: Path) -> None:
    """Past the checks (to the cluster, which the fixture stands in for)."""
    with pytest.raises(Reached):
        worker_cli.add_main(["worker-3", "--address", "fd00::103", "-i", str(lab_inventory)])


TIMEOUTS = ["nan", "NaN", "inf", "-inf", "0", "-5", "0e0", "soon", ""]


@pytest.mark.usefixtures("nothing_runs")
@pytest.mark.parametrize("timeout", TIMEOUTS)
@pytest.mark.parametrize(
    ("main", "argv"),
    [
        (worker_cli.add_main, ["worker-3", "--address", "10.0.0.3"]),
        (worker_cli.remove_main, ["worker-1"]),
    ],
    ids=["add", "remove"],
)
def test_timeout_must_be_a_finite_positive_number(
    main: Callable[[list[str]], int],
    argv: list[str],
    timeout: str,
    lab_inventory: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hosts = lab_inventory / "hosts.yml"
    before = hosts.read_bytes()
    with pytest.raises(SystemExit) as caught:  # argparse's error: usage, message, exit 2
        main([*argv, "-i", str(lab_inventory), f"--timeout={timeout}"])
    assert caught.value.code == Exit.INVALID
    message = f"argument --timeout: must be a positive number of seconds, not {timeout}\n"
    assert capsys.readouterr().err.endswith(message)
    assert hosts.read_bytes() == before


@pytest.mark.parametrize(("text", "seconds"), [("0.5", 0.5), ("1e3", 1000.0), ("7200", 7200.0)])
def test_timeout_takes_any_positive_number(text: str, seconds: float) -> None:
    assert worker_cli.remove_parser().parse_args(["w-1", "--timeout", text]).timeout == seconds
    assert worker_cli.add_parser().parse_args(["w-1", "--timeout", text]).timeout == seconds
