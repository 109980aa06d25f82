"""Celery workers as inventory entries and as members of a running cluster.

Shared by scripts/add_worker.py and scripts/remove_worker.py: the exit codes, checking a
new worker's settings, reading what a worker runs, and draining it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import requests

from clusterops import rules
from clusterops.cluster import Flower
from clusterops.console import Failure, info
from clusterops.inventory import HOST_NAME, Inventory
from clusterops.release import role_defaults

WORKER_GROUP = "airflow_worker"


class Exit(IntEnum):
    """Exit codes of add_worker.py and remove_worker.py (documented in their --help)."""

    OK = 0
    FAILED = 1
    INVALID = 2
    NAME_EXISTS = 3
    NAME_UNKNOWN = 4
    UNREACHABLE = 5
    SSH_AUTH = 6
    PLAYBOOK = 7
    DRAIN_TIMEOUT = 8
    NOT_SEEN = 9


EXIT_HELP = """\
exit codes:
  0  done
  1  any other failure (the message says which)
  2  invalid input: host name, address, queue, concurrency or user
  3  the name (or the address) is already in the inventory
  4  the name is not a worker of the inventory
  5  the host is unreachable over SSH (address, port, firewall)
  6  SSH refused the login (user, key) or the host key is not known
  7  a playbook failed (the message names the task and the host)
  8  drain timeout: tasks still run on the worker, which consumes its queues again
  9  the new worker did not answer a Celery ping or Flower in time
"""


@dataclass(frozen=True)
class WorkerSpec:
    """A worker to add, as the user asked for it."""

    name: str
    address: str
    queues: tuple[str, ...] = ()
    concurrency: int | None = None
    user: str | None = None

    def validate(self) -> None:
        if not HOST_NAME.match(self.name):
            raise Failure(
                f"invalid worker name '{self.name}': use lowercase letters, digits and '-' "
                "(at most 63, not starting or ending with '-')",
                Exit.INVALID,
            )
        if not valid_address(self.address):
            raise Failure(
                "--address must be an IPv4 or IPv6 address (pg_hba.conf and the allow-lists "
                f"are built from it), not '{self.address}'",
                Exit.INVALID,
            )
        # The role's rule (plugins/filter/airflow_cluster.py); what is not given, the
        # role's default, which the rule accepts.
        defaults = role_defaults("airflow_worker")
        concurrency = self.concurrency
        if concurrency is None:
            concurrency = int(defaults["airflow_worker_concurrency"])
        problems = rules.worker_problems(
            list(self.queues) or list(defaults["airflow_worker_queues"]), concurrency
        )
        if problems:
            raise Failure(f"invalid settings for {self.name}: {'; '.join(problems)}", Exit.INVALID)
        if self.user is not None and not re.match(r"^[a-z_][a-z0-9_-]{0,31}$", self.user):
            raise Failure(f"invalid SSH user '{self.user}' for {self.name}", Exit.INVALID)

    def host_vars(self) -> dict[str, Any]:
        """The variables the worker gets in the inventory (only those given)."""
        variables: dict[str, Any] = {"ansible_host": self.address}
        if self.user:
            variables["ansible_user"] = self.user
        if self.queues:
            variables["airflow_worker_queues"] = list(self.queues)
        if self.concurrency is not None:
            variables["airflow_worker_concurrency"] = self.concurrency
        return variables


def valid_address(address: str) -> bool:
    """An IP address, not a DNS name: PostgreSQL admits the worker by it in pg_hba.conf,
    where a name would keep PostgreSQL from starting (the preflight's rule)."""
    return rules.is_ip_address(address)


def check_new(inventory: Inventory, spec: WorkerSpec) -> None:
    """Refuse a name or an address the inventory already has."""
    spec.validate()
    inventory.group(WORKER_GROUP)  # the group must exist
    if spec.name in inventory.hosts():
        raise Failure(f"host '{spec.name}' is already in {inventory.path}", Exit.NAME_EXISTS)
    for host, address in inventory.addresses().items():
        if address == spec.address:
            raise Failure(
                f"address {spec.address} is already host '{host}' in {inventory.path}",
                Exit.NAME_EXISTS,
            )


def check_known(inventory: Inventory, name: str) -> None:
    """Refuse a name that is not a worker of the inventory."""
    workers = inventory.group_hosts(WORKER_GROUP)
    if name not in workers:
        raise Failure(
            f"'{name}' is not a worker in {inventory.path} "
            f"(workers: {', '.join(workers) or 'none'})",
            Exit.NAME_UNKNOWN,
        )


def celery_name(host: str) -> str:
    """The Celery name the airflow_worker role gives a host's worker."""
    return f"celery@{host}"


@dataclass(frozen=True)
class RunningTask:
    """A task a worker runs (or holds, prefetched), named as Airflow names it."""

    celery_id: str
    label: str
    started: float | None = None  # Unix time, when the worker said

    def describe(self, now: float) -> str:
        if self.started is None:
            return f"{self.label} (waiting in the worker)"
        return f"{self.label} (running {now - self.started:.0f}s)"


# Fields of Airflow's ExecuteTask workload, read from the arguments Celery reports. Celery
# shows them as a shortened repr, so they are matched one by one, never parsed whole.
_TI_FIELDS = {
    key: re.compile(rf'"{key}":\s*("(?P<text>[^"]*)"|(?P<number>-?\d+))')
    for key in ("dag_id", "task_id", "run_id", "map_index", "try_number")
}


def _ti_fields(args: Any) -> dict[str, str]:  # noqa: ANN401 -- Celery's JSON
    text = args if isinstance(args, str) else json.dumps(args)
    found: dict[str, str] = {}
    for key, pattern in _TI_FIELDS.items():
        match = pattern.search(text)
        if match:
            found[key] = match.group("text") if match.group("text") is not None else match["number"]
    return found


def running_task(report: dict[str, Any]) -> RunningTask:
    """A task of Celery's `active`/`reserved` lists.

    Only the task instance's name is taken from the arguments: they also hold the task's
    API token, which must never be shown.
    """
    ti = _ti_fields(report.get("args"))
    if {"dag_id", "task_id"} <= ti.keys():
        label = f"{ti['dag_id']}.{ti['task_id']}"
        if ti.get("map_index", "-1") != "-1":
            label += f"[{ti['map_index']}]"
        if "run_id" in ti:
            label += f" run {ti['run_id']}"
        if "try_number" in ti:
            label += f" try {ti['try_number']}"
    else:
        label = f"Celery task {report.get('name', '?')} {report.get('id', '?')}"
    started = report.get("time_start")
    return RunningTask(
        str(report.get("id", "?")),
        label,
        float(started) if isinstance(started, int | float) and started > 0 else None,
    )


@dataclass
class WorkerReport:
    """What a worker says about itself through Flower."""

    name: str
    queues: list[str]
    tasks: list[RunningTask] = field(default_factory=list)

    @classmethod
    def parse(cls, name: str, report: dict[str, Any]) -> WorkerReport:
        queues = [str(q.get("name")) for q in report.get("active_queues") or [] if q.get("name")]
        tasks = [running_task(t) for t in (report.get("active") or [])]
        tasks += [running_task(t) for t in (report.get("reserved") or [])]
        return cls(name, queues, tasks)


def read_worker(flower: Flower, name: str) -> WorkerReport | None:
    """The worker's report; None when Flower answers that it is offline or unknown.

    Raises requests.RequestException when Flower does not answer (refused, timed out, an
    HTTP error): that says nothing about the worker.
    """
    report = flower.worker(name)
    return None if report is None else WorkerReport.parse(name, report)


def flower_error(error: requests.RequestException) -> str:
    """Why Flower did not answer, in a few words (requests' message repeats the URL and
    urllib3's internals)."""
    if isinstance(error, requests.HTTPError) and error.response is not None:
        return f"HTTP {error.response.status_code}"
    if isinstance(error, requests.Timeout):
        return "timed out"
    found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(error))
    return found.group(1).strip() if found else type(error).__name__


class FlowerUnanswered(Failure):
    """Flower did not answer until the drain's deadline: whether the worker still holds
    tasks is unknown, so it must not be removed."""


@dataclass
class Drain:
    """Stop a worker taking tasks and wait until the tasks it holds are done."""

    flower: Flower
    name: str  # Celery name
    timeout: float
    interval: float = 2.0
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    cancelled: list[str] = field(default_factory=list)
    last_error: str = ""  # why Flower did not answer, the last time it did not

    def stop_consuming(self, report: WorkerReport) -> None:
        for queue in report.queues:
            self.flower.cancel_consumer(self.name, queue)
            self.cancelled.append(queue)
        info(f"    {self.name} no longer takes tasks from: {', '.join(report.queues) or '-'}")

    def resume(self) -> None:
        """Undo stop_consuming: the worker takes tasks from its queues again."""
        for queue in self.cancelled:
            self.flower.add_consumer(self.name, queue)
        if self.cancelled:
            info(f"    {self.name} takes tasks again from: {', '.join(self.cancelled)}")
        self.cancelled.clear()

    def poll(self) -> list[RunningTask] | None:
        """The tasks the worker holds (none once Flower answers that it is offline or
        unknown), or None when Flower did not answer: then nobody can tell."""
        try:
            report = read_worker(self.flower, self.name)
        except requests.RequestException as error:
            self.last_error = flower_error(error)
            return None
        return [] if report is None else report.tasks

    def wait(self) -> list[RunningTask]:
        """Wait until the worker holds no task; return those still held at the timeout.

        An unanswered Flower is asked again until the deadline; still silent then, this
        raises FlowerUnanswered (an idle worker and a silent Flower look alike otherwise).
        """
        deadline = self.clock() + self.timeout
        shown = ""
        silent_since: float | None = None
        while True:
            asked = self.clock()
            tasks = self.poll()
            now = self.clock()
            if tasks is None:
                if silent_since is None:
                    silent_since = asked
                    info(f"    Flower does not answer ({self.last_error}): asking again")
                if now >= deadline:
                    raise self._unanswered(now - silent_since)
            elif not tasks:
                return []
            else:
                silent_since = None
                shown = self._show(tasks, now, shown)
                if now >= deadline:
                    return tasks
            self.sleep(min(self.interval, max(0.0, deadline - now)))

    def _show(self, tasks: list[RunningTask], now: float, shown: str) -> str:
        """Print the tasks unless they are those shown last; return what is shown now."""
        labels = ",".join(sorted(t.label for t in tasks))
        if labels != shown:
            lines = "\n".join(f"      {t.describe(now)}" for t in tasks)
            info(f"    {len(tasks)} task(s) still on {self.name}:\n{lines}")
        return labels

    def _unanswered(self, seconds: float) -> FlowerUnanswered:
        return FlowerUnanswered(
            f"Flower at {self.flower.base_url} did not answer for {seconds:.0f} s "
            f"({self.last_error}): cannot tell whether {self.name} is drained; "
            "nothing was removed",
            Exit.FAILED,
        )
