"""What a task finds on a worker: a Python virtualenv of its own, the `airflow` command, and
none of the masters' rights.

The first two need the worker's PATH to start with the cluster virtualenv's bin (the units
set it): PythonVirtualenvOperator runs `python -m venv`, and a BashOperator runs `airflow`
by name. The third reads the worker's own credentials, as any DAG author's code can, and
tries with them what must be refused (docs/security.md): emptying the broker, reading the
metadata database. The lab tests trigger it; it is also a quick check after changing a
worker's settings.
"""

from __future__ import annotations

from collections.abc import Callable

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

    @task(retries=0)
    def what_a_task_may_do() -> dict[str, str]:
        """Each attempt's outcome: 'done', or the error it was refused with."""
        import os  # noqa: PLC0415 -- at run time on the worker, not at parse time
        import shlex  # noqa: PLC0415
        from pathlib import Path  # noqa: PLC0415

        import sqlalchemy  # noqa: PLC0415

        # The worker's environment file sits beside airflow.cfg and is readable by tasks.
        env_file = Path(os.environ["AIRFLOW_CONFIG"]).with_name("airflow.env")
        found = dict(
            shlex.split(line)[0].partition("=")[::2]
            for line in env_file.read_text().splitlines()
            if line.startswith("AIRFLOW__")
        )
        os.environ.update(found)  # the broker settings Celery's app reads

        from airflow.providers.celery.executors.celery_executor import app  # noqa: PLC0415

        def attempt(action: Callable[[], object]) -> str:
            try:
                action()
            except Exception as error:  # the refusal is the result
                return f"{type(error).__name__}: {str(error).splitlines()[0]}"
            return "done"

        def broker(*command: str) -> object:
            with app.connection_for_write() as connection:
                return connection.default_channel.client.execute_command(*command)

        def metadata(query: str) -> object:
            engine = sqlalchemy.create_engine(found["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
            with engine.connect() as connection:
                return connection.execute(sqlalchemy.text(query)).all()

        return {
            "fernet_key": "present" if "AIRFLOW__CORE__FERNET_KEY" in found else "absent",
            "jwt_secret": "present" if "AIRFLOW__API_AUTH__JWT_SECRET" in found else "absent",
            "broker_ping": attempt(lambda: broker("PING")),
            "broker_flushall": attempt(lambda: broker("FLUSHALL")),
            "broker_config_set": attempt(lambda: broker("CONFIG", "SET", "maxmemory", "1")),
            "broker_replicaof": attempt(lambda: broker("REPLICAOF", "NO", "ONE")),
            "read_connections": attempt(lambda: metadata("SELECT * FROM connection")),
            "read_variables": attempt(lambda: metadata("SELECT * FROM variable")),
            "read_results": attempt(lambda: metadata("SELECT count(*) FROM celery_taskmeta")),
        }

    in_a_virtualenv() >> airflow_cli >> what_a_task_may_do()


task_environment()
