"""What a task finds on a worker: a Python virtualenv of its own, and the `airflow` command.

Both need the worker's PATH to start with the cluster virtualenv's bin (the units set it):
PythonVirtualenvOperator runs `python -m venv`, and a BashOperator runs `airflow` by name.
The lab tests trigger it; it is also a quick check after changing a worker's settings.
"""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import dag, task


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["cluster", "operations"],
    doc_md=__doc__,
)
def task_environment() -> None:
    @task.virtualenv(requirements=[], system_site_packages=False, retries=0)
    def in_a_virtualenv() -> str:
        import sys  # noqa: PLC0415 -- runs in the new virtualenv, not at parse time

        # The new virtualenv's own interpreter, not the cluster's.
        return f"{sys.prefix} {sys.version.split()[0]}"

    # Airflow 3 keeps tasks away from the metadata database: a task's environment holds an
    # unusable database URL, on which any `airflow` command that initialises Airflow fails
    # (apache/airflow#50601). `airflow version` needs nothing of that: _AIRFLOW__AS_LIBRARY
    # skips the initialisation, as Airflow documents for reading `__version__`. Commands that
    # need the database belong in the REST API, not in tasks.
    airflow_cli = BashOperator(
        task_id="airflow_cli",
        bash_command="command -v python airflow && airflow version",
        env={"_AIRFLOW__AS_LIBRARY": "1"},
        append_env=True,
        retries=0,
    )

    in_a_virtualenv() >> airflow_cli


task_environment()
