"""Questions to a running cluster: Airflow's REST API (as the admin) and Flower's.

Used by the tests and the worker scripts. Credentials come from the inventory's vault.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any, TypeVar

import requests

from clusterops import secrets
from clusterops.console import Failure, info
from clusterops.paths import LAB_INVENTORY, LAB_VAULT_PASSWORD

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


@dataclass
class Credentials:
    admin_password: str
    flower_password: str
    user: str = "admin"

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

    def workers(self) -> dict[str, Any]:
        """The workers that answer Flower now (not its cache of those seen at its start)."""
        response = requests.get(
            f"{self.base_url}/api/workers",
            params={"refresh": "true"},
            auth=self.auth,
            timeout=self.timeout,
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result
