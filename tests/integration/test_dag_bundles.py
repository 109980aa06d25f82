"""DAGs come from git: a pushed commit is listed and runs; a run keeps the commit it began on.

Each test pushes to the lab's DAG repository the way a user pushes to a fork: it clones
the repository, commits a DAG file under dags/ and pushes. At the end the repository's
dags/ is published back to this project's (scripts/publish_dags.py), so the probe DAGs
are deleted again.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from clusterops import dags_repo
from clusterops.cluster import AirflowAPI, wait_for
from clusterops.lab.hosts import LabSpec
from clusterops.paths import LAB_INVENTORY, PROJECT_ROOT
from clusterops.release import role_defaults

pytestmark = pytest.mark.lab

# The lab's airflow_dag_bundle_refresh_interval (the role's default).
REFRESH_INTERVAL = int(role_defaults("airflow_common")["airflow_dag_bundle_refresh_interval"])
# A new file is listed after the next fetch (<= the interval) and its first parse.
LISTED_WITHIN = REFRESH_INTERVAL + 60

NEW_DAG = """\
import logging
import socket

from airflow.sdk import DAG, task

with DAG(dag_id="{dag_id}", schedule=None, is_paused_upon_creation=False, tags=["probe"]):

    @task
    def where() -> str:
        logging.getLogger(__name__).info("running on %s", socket.gethostname())
        return socket.gethostname()

    where()
"""

# `gate` waits until the test sets an Airflow Variable; `report` returns the VERSION of the
# file the worker checked out. The tag makes each version's serialized DAG differ.
VERSIONED_DAG = """\
from airflow.sdk import DAG, Variable, task

VERSION = "{version}"

with DAG(
    dag_id="{dag_id}", schedule=None, is_paused_upon_creation=False, tags=[f"version-{{VERSION}}"]
):

    @task.sensor(poke_interval=2, timeout=600, mode="poke")
    def gate() -> bool:
        return Variable.get("{gate}", default=None) is not None

    @task
    def report() -> str:
        return VERSION

    gate() >> report()
"""


class Clone:
    """A clone of the lab's DAG repository that commits and pushes like a user would."""

    def __init__(self, path: Path) -> None:
        self.remote = dags_repo.lab_remote(LAB_INVENTORY)
        self.path = path
        self.remote.git("clone", "--quiet", self.remote.url, str(path))

    def push(self, name: str, text: str) -> tuple[str, float]:
        """Write dags/<name>, commit and push it; the commit and when the push finished."""
        self.remote.git("pull", "--quiet", "--ff-only", cwd=self.path)
        (self.path / dags_repo.SUBDIR / name).write_text(text)
        self.remote.git("add", "--all", cwd=self.path)
        self.remote.git("commit", "--quiet", "-m", f"test: {name}", cwd=self.path)
        self.remote.git("push", "--quiet", "origin", dags_repo.BRANCH, cwd=self.path)
        return self.remote.git("rev-parse", "HEAD", cwd=self.path), time.time()


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clone]:
    yield Clone(tmp_path_factory.mktemp("dags-repo") / "clone")
    dags_repo.publish(dags_repo.lab_remote(LAB_INVENTORY), PROJECT_ROOT / "dags")


def epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def xcom(api: AirflowAPI, dag_id: str, run_id: str, task_id: str) -> Any:
    path = (
        f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
    )
    return api.request("GET", path, params={"deserialize": True})["value"]


def test_pushed_dag_is_listed_and_runs_on_a_worker(
    api: AirflowAPI, clone: Clone, lab: LabSpec
) -> None:
    dag_id = f"probe_new_{secrets.token_hex(4)}"
    commit, pushed = clone.push(f"{dag_id}.py", NEW_DAG.format(dag_id=dag_id))

    dag = wait_for(f"{dag_id} to be listed", lambda: api.dag(dag_id), LISTED_WITHIN, interval=1)
    listed = time.time() - pushed
    assert dag["bundle_name"] == "dags"
    assert dag["bundle_version"] == commit

    run_id = api.trigger(dag_id)
    run = api.wait_for_run(dag_id, run_id, timeout=180)
    assert run["state"] == "success"
    assert run["bundle_version"] == commit
    (ti,) = api.task_instances(dag_id, run_id)
    assert ti["hostname"] in lab.group("airflow_worker")
    started = epoch(ti["start_date"]) - pushed
    print(f"benchmark: push -> listed {listed:.1f}s, push -> first task started {started:.1f}s")


def test_run_keeps_its_commit_when_the_dag_changes(api: AirflowAPI, clone: Clone) -> None:
    dag_id = f"probe_version_{secrets.token_hex(4)}"
    gate = f"{dag_id}_gate"
    file = f"{dag_id}.py"
    commit_a, _ = clone.push(file, VERSIONED_DAG.format(dag_id=dag_id, version="A", gate=gate))
    wait_for(
        f"{dag_id} at {commit_a[:12]}",
        lambda: (api.dag(dag_id) or {}).get("bundle_version") == commit_a or None,
        LISTED_WITHIN,
    )
    first = api.trigger(dag_id)

    def gate_running() -> bool | None:
        states = {ti["task_id"]: ti["state"] for ti in api.task_instances(dag_id, first)}
        return states.get("gate") == "running" or None

    wait_for(f"{first} to wait at its gate", gate_running, timeout=180)

    commit_b, _ = clone.push(file, VERSIONED_DAG.format(dag_id=dag_id, version="B", gate=gate))
    wait_for(
        f"{dag_id} at {commit_b[:12]}",
        lambda: (api.dag(dag_id) or {}).get("bundle_version") == commit_b or None,
        LISTED_WITHIN,
    )
    api.request("POST", "/api/v2/variables", json={"key": gate, "value": "open"})
    try:
        run = api.wait_for_run(dag_id, first, timeout=180)
        assert run["state"] == "success"
        assert run["bundle_version"] == commit_a
        assert xcom(api, dag_id, first, "report") == "A"

        second = api.trigger(dag_id)
        run = api.wait_for_run(dag_id, second, timeout=180)
        assert run["state"] == "success"
        assert run["bundle_version"] == commit_b
        assert xcom(api, dag_id, second, "report") == "B"
    finally:
        api.request("DELETE", f"/api/v2/variables/{gate}")
