"""One pinned Airflow in a virtualenv, configured under /etc/airflow with secrets kept apart."""

from __future__ import annotations

import json
import os
from pathlib import Path

from testinfra.host import Host

CONSTRAINTS = Path(__file__).parents[3] / "files" / "constraints" / "airflow-3.3.2-python3.11.txt"


def secret(name: str) -> str:
    return (Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / f"secret_{name}").read_text().strip()


def airflow(host: Host, *args: str) -> str:
    """The administrators' airflow command, as the airflow user."""
    with host.sudo("airflow"):
        return str(host.check_output("airflow " + " ".join(args)))


def test_system_user_cannot_log_in(host: Host) -> None:
    user = host.user("airflow")
    assert user.exists
    assert user.shell == "/usr/sbin/nologin"
    assert user.home == "/var/lib/airflow"


def test_installed_versions_are_the_constraints_file(host: Host) -> None:
    pins = dict(
        line.split("==")
        for line in CONSTRAINTS.read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    installed = {
        name.lower(): version
        for name, version in (
            line.split("==")
            for line in host.check_output("/opt/airflow/venv/bin/pip freeze --all").splitlines()
        )
    }
    wanted = {name.lower(): version for name, version in pins.items()}
    assert installed["apache-airflow"] == "3.3.2"
    assert installed["celery"] == wanted["celery"]
    mismatched = {n: (v, wanted[n]) for n, v in installed.items() if n in wanted and wanted[n] != v}
    assert mismatched == {}


def test_virtualenv_is_root_owned_and_linked(host: Host) -> None:
    link = host.file("/opt/airflow/venv")
    assert link.is_symlink
    assert link.linked_to.startswith("/opt/airflow/venvs/3.3.2-")
    assert host.file(link.linked_to).user == "root"


def test_config_is_celery_with_fab_auth(host: Host) -> None:
    assert airflow(host, "config", "get-value", "core", "executor") == "CeleryExecutor"
    assert airflow(host, "config", "get-value", "core", "auth_manager").endswith("FabAuthManager")
    url = airflow(host, "config", "get-value", "core", "execution_api_server_url")
    assert url == f"http://{host.ansible.get_variables()['ansible_host']}:8080/execution/"


def test_secrets_reach_airflow_from_the_environment_file(host: Host) -> None:
    assert airflow(host, "config", "get-value", "api_auth", "jwt_secret") == secret("jwt_secret")
    assert airflow(host, "config", "get-value", "core", "fernet_key") == secret("fernet") + "="


def test_config_and_secret_files_are_private(host: Host) -> None:
    with host.sudo():
        for path in ("/etc/airflow/airflow.cfg", "/etc/airflow/airflow.env"):
            f = host.file(path)
            assert (f.user, f.group, f.mode) == ("root", "airflow", 0o640), path
        assert secret("jwt_secret") not in host.file("/etc/airflow/airflow.cfg").content_string
        assert host.file("/etc/airflow").mode == 0o750


def test_every_inventory_host_resolves(host: Host) -> None:
    name = host.ansible.get_variables()["inventory_hostname"]
    assert host.addr(name).ip_addresses == [host.ansible.get_variables()["ansible_host"]]


def test_time_sync_is_enabled(host: Host) -> None:
    assert host.service("systemd-timesyncd").is_enabled


def test_local_bundle_is_configured_and_its_dags_copied(host: Host) -> None:
    bundles = json.loads(
        airflow(host, "config", "get-value", "dag_processor", "dag_bundle_config_list")
    )
    assert [(b["name"], b["classpath"].rsplit(".", 1)[-1]) for b in bundles] == [
        ("dags-folder", "LocalDagBundle")
    ]
    folder = bundles[0]["kwargs"]["path"]
    project_dags = Path(__file__).parents[5] / "dags"
    expected = sorted(p.name for p in project_dags.glob("*.py"))
    with host.sudo():
        assert sorted(n for n in host.file(folder).listdir() if n.endswith(".py")) == expected
        assert host.file(f"{folder}/{expected[0]}").user == "airflow"
