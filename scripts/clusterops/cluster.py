"""Questions to a running cluster: Airflow's REST API (as the admin) and Flower's.

Used by the tests and the worker scripts. Credentials come from the inventory's vault.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, TypeVar

import requests

from clusterops import secrets
from clusterops.console import Failure, info
from clusterops.paths import LAB_INVENTORY, LAB_VAULT_PASSWORD
from clusterops.release import role_defaults
from clusterops.runner import inventory_hostvars

T = TypeVar("T")
TERMINAL_RUN_STATES = {"success", "failed"}


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 2.0) -> T:
    """Call `probe` until it returns something other than None; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    last_error = ""
    while True:
        try:
            result = probe()
        except requests.RequestException as error:
            result, last_error = None, str(error)
        if result is not None:
            return result
        if time.monotonic() > deadline:
            detail = f" (last error: {last_error})" if last_error else ""
            raise Failure(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)


def _master_default(name: str) -> str:
    """airflow_master's default for `name` (its defaults/main.yml, the one source)."""
    return str(role_defaults("airflow_master")[name])


@dataclass
class Credentials:
    admin_password: str
    flower_password: str
    user: str = field(default_factory=lambda: _master_default("airflow_master_admin_user"))
    flower_user: str = field(default_factory=lambda: _master_default("airflow_master_flower_user"))

    @classmethod
    def from_vault(
        cls, inventory: Path = LAB_INVENTORY, password_file: Path = LAB_VAULT_PASSWORD
    ) -> Credentials:
        values = secrets.Vault(
            secrets.vault_file(inventory), secrets.read_password(password_file)
        ).read()
        return cls(values["vault_airflow_admin_password"], values["vault_airflow_flower_password"])


class AirflowAPI:
    """Airflow's REST API (/api/v2) on one API server, logged in as a user."""

    def __init__(self, base_url: str, user: str, password: str, timeout: float = 30) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self._user, self._password = user, password

    def login(self) -> None:
        response = self.session.post(
            f"{self.base_url}/auth/token",
            json={"username": self._user, "password": self._password},
            timeout=self.timeout,
        )
        if response.status_code not in (200, 201):
            raise Failure(
                f"cannot log in to {self.base_url} as {self._user}: HTTP {response.status_code}"
            )
        self.session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def request(self, method: str, path: str, **kwargs: Any) -> Any:  # noqa: ANN401 -- JSON
        if "Authorization" not in self.session.headers:
            self.login()
        response = self.session.request(
            method, f"{self.base_url}{path}", timeout=self.timeout, **kwargs
        )
        if response.status_code == HTTPStatus.UNAUTHORIZED:  # token expired: log in again, once
            self.login()
            response = self.session.request(
                method, f"{self.base_url}{path}", timeout=self.timeout, **kwargs
            )
        response.raise_for_status()
        return response.json() if response.content else None

    def health(self) -> dict[str, Any]:
        response = requests.get(f"{self.base_url}/api/v2/monitor/health", timeout=self.timeout)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def dag(self, dag_id: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = self.request("GET", f"/api/v2/dags/{dag_id}")
        except requests.HTTPError as error:
            if error.response is not None and error.response.status_code == HTTPStatus.NOT_FOUND:
                return None
            raise
        return result

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Unpause the DAG and start a run; returns its run id."""
        self.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})
        run = self.request(
            "POST",
            f"/api/v2/dags/{dag_id}/dagRuns",
            json={"logical_date": None, "conf": conf or {}},
        )
        return str(run["dag_run_id"])

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        return result

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> dict[str, Any]:
        """Poll until the run succeeds or fails, printing its progress."""
        seen: list[str] = []

        def finished() -> dict[str, Any] | None:
            run = self.run(dag_id, run_id)
            counts: dict[str, int] = {}
            for ti in self.task_instances(dag_id, run_id):
                state = str(ti.get("state"))
                counts[state] = counts.get(state, 0) + 1
            line = f"    {dag_id} {run['state']}: " + ", ".join(
                f"{n} {s}" for s, n in sorted(counts.items())
            )
            if not seen or seen[-1] != line:
                seen.append(line)
                info(line)
            return run if run["state"] in TERMINAL_RUN_STATES else None

        return wait_for(f"run {run_id} of {dag_id}", finished, timeout)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of a run, mapped ones included (all pages)."""
        found: list[dict[str, Any]] = []
        while True:
            page = self.request(
                "GET",
                f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                params={"limit": 100, "offset": len(found)},
            )
            found.extend(page["task_instances"])
            if not page["task_instances"] or len(found) >= page["total_entries"]:
                return found

    def clear(self, dag_id: str, run_id: str, task_ids: list[str]) -> None:
        """Clear these task instances of a run (not their downstream): the scheduler runs them
        again and the run is running until they finish."""
        self.request(
            "POST",
            f"/api/v2/dags/{dag_id}/clearTaskInstances",
            json={
                "dag_run_id": run_id,
                "task_ids": task_ids,
                "dry_run": False,
                "only_failed": False,
                "reset_dag_runs": True,
                "include_downstream": False,
                "include_upstream": False,
            },
        )

    def task_log(self, ti: dict[str, Any]) -> str:
        """The text of a task instance's log (its latest try), as the UI shows it."""
        path = (
            f"/api/v2/dags/{ti['dag_id']}/dagRuns/{ti['dag_run_id']}/taskInstances/"
            f"{ti['task_id']}/logs/{ti['try_number']}"
        )
        body = self.request(
            "GET",
            path,
            params={"map_index": ti.get("map_index", -1), "full_content": True},
            headers={"Accept": "application/json"},
        )
        content = body.get("content", [])
        if isinstance(content, str):
            return content
        return "\n".join(
            str(line.get("event", line)) if isinstance(line, dict) else str(line)
            for line in content
        )


class Flower:
    """Flower's HTTP API, with basic authentication."""

    def __init__(self, base_url: str, user: str, password: str, timeout: float = 30) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = (user, password)
        self.timeout = timeout

    def workers(self, name: str | None = None) -> dict[str, Any]:
        """The workers that answer Flower now (not its cache of those seen at its start).

        Keyed by Celery name (celery@<host>): stats, active_queues, active and reserved
        tasks as each worker reports them. `name` asks that one worker only.
        """
        params = {"refresh": "true"}
        if name:
            params["workername"] = name
        response = requests.get(
            f"{self.base_url}/api/workers", params=params, auth=self.auth, timeout=self.timeout
        )
        if name and response.status_code == HTTPStatus.NOT_FOUND:
            return {}  # Flower has never heard of that worker
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def alive(self) -> dict[str, bool]:
        """Every worker Flower knows of: is it alive (its heartbeats keep coming)?

        Flower keeps a stopped worker in its lists, marked offline, until Flower restarts.
        """
        response = requests.get(
            f"{self.base_url}/api/workers",
            params={"status": "true"},
            auth=self.auth,
            timeout=self.timeout,
        )
        response.raise_for_status()
        return {str(name): bool(up) for name, up in response.json().items()}

    def worker(self, name: str) -> dict[str, Any] | None:
        """One live worker's fresh report, or None when it is offline or unknown."""
        if not self.alive().get(name):
            return None
        found = self.workers(name).get(name)
        return found if isinstance(found, dict) and found.get("stats") else None

    def _control(self, action: str, name: str, queue: str) -> None:
        def post() -> requests.Response:
            return requests.post(
                f"{self.base_url}/api/worker/queue/{action}/{name}",
                params={"queue": queue},
                auth=self.auth,
                timeout=self.timeout,
            )

        last: list[requests.Response] = []

        def answered() -> requests.Response | None:
            response = post()
            if response.status_code == HTTPStatus.NOT_FOUND:
                # Flower controls only the workers its last inspection found; a Flower
                # started since then knows none. Ask this worker, then try once more.
                self.workers(name)
                response = post()
            last[:] = [response]
            # Tried again: a 5xx (Flower's broker connection failing over to a new Redis
            # master; Flower reconnects on the next call) and a 403 (the worker's reply
            # missed Flower's one-second wait, as on a busy host). Both calls can be
            # repeated: a queue already added or cancelled answers "ok" again.
            status = response.status_code
            retry = status == HTTPStatus.FORBIDDEN or status >= HTTPStatus.INTERNAL_SERVER_ERROR
            return None if retry else response

        try:
            response = wait_for(f"Flower to {action} on {name}", answered, self.timeout, 3)
        except Failure:
            if not last:
                raise
            response = last[0]
        if response.status_code != HTTPStatus.OK:
            raise Failure(
                f"Flower could not {action} queue '{queue}' of {name}: "
                f"HTTP {response.status_code} {response.text.strip()[:200]}"
            )

    def cancel_consumer(self, name: str, queue: str) -> None:
        """Make the worker stop taking tasks from `queue` (running ones go on)."""
        self._control("cancel-consumer", name, queue)

    def add_consumer(self, name: str, queue: str) -> None:
        """Make the worker take tasks from `queue` again."""
        self._control("add-consumer", name, queue)


@dataclass(frozen=True)
class Endpoints:
    """Where a deployed cluster answers: the API server and Flower on the masters' virtual
    IP (airflow_vip), or the first master's without one."""

    api: AirflowAPI
    flower: Flower

    @classmethod
    def from_inventory(cls, inventory: Path, password_file: Path) -> Endpoints:
        hostvars, groups = inventory_hostvars(inventory)
        masters = groups.get("airflow_master", [])
        if not masters:
            raise Failure(f"inventory {inventory} has no host in group 'airflow_master'", 2)
        master = hostvars.get(masters[0], {})
        address = master.get("cluster_address") or master.get("ansible_host") or masters[0]
        if "{{" in str(address):  # a template the inventory script did not resolve
            address = master.get("ansible_host") or masters[0]
        vip = str(master.get("airflow_vip") or "")
        if vip and "{{" not in vip:
            address = vip
        credentials = Credentials.from_vault(inventory, password_file)
        api_port = master.get(
            "airflow_api_port", role_defaults("cluster_defaults")["airflow_api_port"]
        )
        flower_port = master.get(
            "airflow_master_flower_port", _master_default("airflow_master_flower_port")
        )
        user = master.get("airflow_master_admin_user", credentials.user)
        flower_user = master.get("airflow_master_flower_user", credentials.flower_user)
        return cls(
            AirflowAPI(f"http://{address}:{api_port}", user, credentials.admin_password),
            Flower(f"http://{address}:{flower_port}", flower_user, credentials.flower_password),
        )
