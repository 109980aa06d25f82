"""Removing a Celery worker without losing a task or a log."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import requests

from clusterops import runner
from clusterops.cluster import Endpoints, Flower, wait_for
from clusterops.console import Failure, info, step, warn
from clusterops.inventory import Inventory
from clusterops.scale_out import ssh_exit_code
from clusterops.workers import (
    WORKER_GROUP,
    Drain,
    Exit,
    FlowerUnanswered,
    RunningTask,
    WorkerReport,
    celery_name,
    check_known,
    flower_error,
    read_worker,
)

# The operation: stop the worker, keep its task logs, PostgreSQL and the masters forget it.
PLAYBOOK = "playbooks/remove_worker.yml"


@dataclass(frozen=True)
class Removal:
    name: str
    timeout: float
    force: bool = False
    interval: float = 2.0


def _first_report(flower: Flower, name: str) -> WorkerReport | None:
    """What the worker holds before the drain starts: Flower must answer."""
    try:
        return read_worker(flower, name)
    except requests.RequestException as error:
        raise Failure(
            f"Flower at {flower.base_url} did not answer ({flower_error(error)}): cannot tell "
            f"whether {name} holds tasks; nothing was changed",
            Exit.FAILED,
        ) from None


def _given_back(drain: Drain, unanswered: FlowerUnanswered, host: str) -> Failure:
    """After a drain Flower left unanswered: the worker's queues back, and what to say."""
    try:
        drain.resume()
    except (Failure, requests.RequestException) as error:
        return Failure(
            f"{unanswered}; its queues could not be given back either ({error}): restart "
            f"airflow-worker.service on {host} so that it takes tasks again",
            Exit.FAILED,
        )
    return Failure(f"{unanswered}; it takes tasks again and stays in the inventory", Exit.FAILED)


def _drain(endpoints: Endpoints, removal: Removal) -> tuple[Drain, list[RunningTask]]:
    """Stop the worker consuming and wait for its tasks; resume it again on a timeout, or
    when Flower stopped answering (then whether it still holds tasks is unknown)."""
    name = celery_name(removal.name)
    drain = Drain(endpoints.flower, name, removal.timeout, removal.interval)
    report = _first_report(endpoints.flower, name)
    if report is None:
        warn(f"{name} does not answer Celery: nothing to drain (is the worker stopped?)")
        return drain, []
    with step(f"Draining {name} (waiting up to {removal.timeout:.0f}s for its tasks)"):
        drain.stop_consuming(report)
        try:
            left = drain.wait()
        except FlowerUnanswered as unanswered:
            raise _given_back(drain, unanswered, removal.name) from None
    if not left:
        info(f"    {name} holds no task any more")
        return drain, []
    if not removal.force:
        drain.resume()
        listing = "\n".join(f"  {task.label}" for task in left)
        raise Failure(
            f"{len(left)} task(s) still run on {removal.name} after {removal.timeout:.0f}s; "
            f"it takes tasks again and stays in the inventory. Wait, or give a longer --timeout "
            f"(or --force to kill them):\n{listing}",
            Exit.DRAIN_TIMEOUT,
        )
    warn(
        f"--force: killing {len(left)} task(s) on {removal.name}; Airflow fails them (or "
        f"retries those with retries left): {', '.join(t.label for t in left)}"
    )
    return drain, left


def _remove(inventory_dir: Path, removal: Removal, drain: Drain, kill: bool) -> None:
    """playbooks/remove_worker.yml: stop it, keep its task logs, PostgreSQL and the masters
    forget it. On a failure before it is stopped, the worker takes tasks again."""
    try:
        runner.run_playbook(
            inventory_dir,
            PLAYBOOK,
            extravars={"worker": removal.name, "remove_worker_force": kill or removal.force},
        )
    except runner.PlaybookFailure as failure:
        unreachable = [f for f in failure.failures if f.host == removal.name]
        others = [f for f in failure.failures if f.host != removal.name]
        if unreachable and removal.force and not others:
            warn(f"{removal.name} is unreachable; --force went on without its logs")
            return
        if drain.cancelled:
            drain.resume()
        code = ssh_exit_code(unreachable[0]) if unreachable else Exit.PLAYBOOK
        hint = "; give --force to remove it anyway" if unreachable else ""
        raise Failure(f"{failure}{hint}", code) from None


def remove(
    inventory_dir: Path, hosts_file: Path, removal: Removal, password_file: Path
) -> list[RunningTask]:
    """Drain, retire and forget the worker; return the tasks --force killed (none without)."""
    inventory = Inventory(hosts_file)
    check_known(inventory, removal.name)
    if len(inventory.group_hosts(WORKER_GROUP)) == 1:
        raise Failure(
            f"{removal.name} is the last worker of {hosts_file}: add another one first",
            Exit.INVALID,
        )
    endpoints = Endpoints.from_inventory(inventory_dir, password_file)
    drain, left = _drain(endpoints, removal)
    with step(
        f"Stopping {removal.name}, keeping its task logs on the masters, PostgreSQL and "
        f"the masters forgetting it ({PLAYBOOK})"
    ):
        _remove(inventory_dir, removal, drain, kill=bool(left))
    inventory.remove_host(WORKER_GROUP, removal.name)
    inventory.save()
    info(f"==> {removal.name} removed from {hosts_file}")
    with step(f"Checking that Flower sees {celery_name(removal.name)} offline"):
        wait_for(
            f"Flower to see {celery_name(removal.name)} offline",
            lambda: True if not endpoints.flower.alive().get(celery_name(removal.name)) else None,
            60,
        )
    return left
