"""A worker's tasks find `python` and `airflow`: a virtualenv task and `airflow version` run.
And with the worker's own credentials a task can use the broker, but not empty or
reconfigure it, nor read the metadata database.

The Airflow units put the cluster virtualenv's bin first on PATH. Without it,
PythonVirtualenvOperator fails with FileNotFoundError: 'python', and a BashOperator cannot
run `airflow` (dags/task_environment.py).
"""

from __future__ import annotations

import pytest

from clusterops import release
from clusterops.cluster import AirflowAPI, wait_for
from clusterops.layout import LAYOUT

pytestmark = pytest.mark.lab

DAG_ID = "task_environment"


def test_a_virtualenv_task_and_the_airflow_command_run_on_a_worker(api: AirflowAPI) -> None:
    wait_for(f"DAG {DAG_ID} to be parsed", lambda: api.dag(DAG_ID), timeout=120)
    run_id = api.trigger(DAG_ID)
    run = api.wait_for_run(DAG_ID, run_id, timeout=300)
    instances = {ti["task_id"]: ti for ti in api.task_instances(DAG_ID, run_id)}
    logs = {task_id: api.task_log(ti) for task_id, ti in instances.items()}
    states = {task_id: ti["state"] for task_id, ti in instances.items()}
    assert run["state"] == "success", (states, logs)
    assert states == {
        "in_a_virtualenv": "success",
        "airflow_cli": "success",
        "what_a_task_may_do": "success",
    }
    # The virtualenv task ran in a new virtualenv (a temporary folder), not the cluster's.
    returned = logs["in_a_virtualenv"].split("Returned value was:")[-1]
    assert "Returned value was:" in logs["in_a_virtualenv"]
    tmp = LAYOUT.home / "tmp"
    assert f"{tmp}/venv" in returned and f"{LAYOUT.install_dir}/venvs/" not in returned
    # `python` and `airflow` are the cluster virtualenv's; `airflow version` printed its version.
    assert str(LAYOUT.python) in logs["airflow_cli"]
    assert str(LAYOUT.airflow) in logs["airflow_cli"]
    assert release.load().version in logs["airflow_cli"].split("airflow version")[-1]
    assert all(ti["hostname"].startswith("worker-") for ti in instances.values())

    tried = api.request(
        "GET",
        f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/what_a_task_may_do"
        "/xcomEntries/return_value",
    )["value"]
    refused = "NoPermissionError: this user has no permissions to run the"
    assert tried["fernet_key"] == tried["jwt_secret"] == "absent", tried
    assert tried["broker_ping"] == "done", tried
    for command in ("flushall", "config_set", "replicaof"):
        assert tried[f"broker_{command}"].startswith(refused), tried
    for table in ("connections", "variables"):
        assert "permission denied for table" in tried[f"read_{table}"], tried
    assert tried["read_results"] == "done", tried
