"""Every DAG file in dags/ imports cleanly with the cluster's Airflow: no import error, and
no network use at import time (sockets are blocked while the files are parsed).

The files are this working tree's dags/, copied to a master and parsed there by a DagBag
in the master's own virtualenv, as the airflow user with the cluster's configuration.
"""

from __future__ import annotations

import fnmatch
import json
import shlex
import subprocess
from typing import Any

import pytest

from clusterops.lab import hosts
from clusterops.lab.hosts import LabSpec
from clusterops.layout import LAYOUT
from clusterops.paths import PROJECT_ROOT

pytestmark = pytest.mark.lab

DAGS = PROJECT_ROOT / "dags"
WITH_ENV = str(LAYOUT.with_env)
PYTHON = str(LAYOUT.python)

# Run on the master. Any socket connect or name lookup while the files import is recorded
# and refused; the DagBag reports what each file defined and every import error.
PARSE = r"""
import json, socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args[1:] if args and isinstance(args[0], socket.socket) else args)[:200])
    raise OSError("network use at import time")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.getaddrinfo = refuse
socket.create_connection = refuse
from airflow.dag_processing.dagbag import BundleDagBag
folder = sys.argv[1]
bag = BundleDagBag(folder, bundle_path=folder, bundle_name="check")
print(json.dumps({
    "dags": {dag_id: dag.fileloc.rsplit("/", 1)[-1] for dag_id, dag in bag.dags.items()},
    "errors": bag.import_errors,
    "attempts": attempts,
}))
"""


def ssh(lab: LabSpec, name: str, command: str, stdin: bytes | None = None) -> bytes:
    address = lab.host(name).address
    result = subprocess.run(
        [
            "ssh", "-F", "/dev/null", "-i", str(hosts.SSH_KEY),
            "-o", f"UserKnownHostsFile={hosts.KNOWN_HOSTS}", "-o", "StrictHostKeyChecking=yes",
            f"{lab.user}@{address}", command,
        ],
        input=stdin, capture_output=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"{name}: {command}\n{result.stderr.decode()}"
    return result.stdout


@pytest.fixture(scope="module")
def parsed(lab: LabSpec, master: str) -> dict[str, Any]:
    archive = subprocess.run(
        ["tar", "-C", str(DAGS), "-c", "."], capture_output=True, check=True
    ).stdout
    folder = "/var/lib/airflow/tmp/dags-import-check"  # the airflow user's TMPDIR
    ssh(
        lab,
        master,
        f"sudo rm -rf {folder} && sudo -u airflow mkdir {folder}"
        f" && sudo -u airflow tar -x -C {folder}",
        stdin=archive,
    )
    try:
        out = ssh(
            lab,
            master,
            f"cd / && sudo -u airflow {WITH_ENV} {PYTHON} -c {shlex.quote(PARSE)} {folder}",
        )
    finally:
        ssh(lab, master, f"sudo rm -rf {folder}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def _dag_files() -> set[str]:
    """The files Airflow parses: *.py of dags/ not matched by .airflowignore (glob syntax,
    Airflow 3's default; '/' anchors a pattern to the folder, which is where these live)."""
    ignore = DAGS / ".airflowignore"
    lines = ignore.read_text().splitlines() if ignore.exists() else []
    patterns = [line.strip().lstrip("/") for line in lines]
    patterns = [pattern for pattern in patterns if pattern and not pattern.startswith("#")]
    return {
        path.name for path in DAGS.glob("*.py")
        if not any(fnmatch.fnmatch(path.name, pattern) for pattern in patterns)
    }  # fmt: skip


def test_no_dag_file_has_an_import_error(parsed: dict[str, Any]) -> None:
    assert parsed["errors"] == {}


def test_no_dag_file_uses_the_network_when_imported(parsed: dict[str, Any]) -> None:
    assert parsed["attempts"] == []


def test_every_dag_file_defines_a_dag(parsed: dict[str, Any]) -> None:
    files = _dag_files()
    assert files, "no DAG file found in dags/"
    assert set(parsed["dags"].values()) == files
    assert "csv_to_json_example" in parsed["dags"]
