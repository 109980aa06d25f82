"""One pinned Airflow in a virtualenv, configured in its config folder with secrets kept apart."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from testinfra.host import Host

from clusterops import release
from clusterops.layout import LAYOUT
from clusterops.release import role_defaults

# The release pinned in the role's defaults (its one source), and the constraints file.
RELEASE = release.load()
CONSTRAINTS = RELEASE.constraints
DEFAULTS = role_defaults("airflow_common")


EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
WITH_ENV = str(LAYOUT.with_env)
VENV = LAYOUT.venv
CONFIG = LAYOUT.config_dir
# The controller's wheelhouse (.config/molecule/config.yml; scripts/run_molecule.py sets it).
WHEELHOUSE = os.environ.get("AIRFLOW_WHEELHOUSE_DIR", "")


def secret(name: str) -> str:
    return (EPHEMERAL / f"secret_{name}").read_text().strip()


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
            for line in host.check_output(f"{VENV}/bin/pip freeze --all").splitlines()
        )
    }
    wanted = {name.lower(): version for name, version in pins.items()}
    assert installed["apache-airflow"] == RELEASE.version
    assert installed["celery"] == wanted["celery"]
    mismatched = {n: (v, wanted[n]) for n, v in installed.items() if n in wanted and wanted[n] != v}
    assert mismatched == {}


def test_virtualenv_is_root_owned_and_linked(host: Host) -> None:
    link = host.file(str(VENV))
    assert link.is_symlink
    assert link.linked_to.startswith(f"{LAYOUT.install_dir}/venvs/{RELEASE.version}-")
    assert host.file(link.linked_to).user == "root"


def test_virtualenv_came_from_the_wheelhouse_byte_compiled(host: Host) -> None:
    """With a wheelhouse (scripts/run_molecule.py builds one), uv made the virtualenv, every
    module is byte-compiled (the services cannot write __pycache__), the copy is gone."""
    if not WHEELHOUSE:
        pytest.skip("AIRFLOW_WHEELHOUSE_DIR is empty: the host installed from PyPI with pip")
    venv = host.file(str(VENV)).linked_to
    assert "uv = " in host.file(f"{venv}/pyvenv.cfg").content_string
    with host.sudo():
        sources = int(
            host.check_output(f"find {venv}/lib -name '*.py' -path '*airflow/models/*' | wc -l")
        )
        compiled = int(
            host.check_output(f"find {venv}/lib -name '*.pyc' -path '*airflow/models/*' | wc -l")
        )
        assert sources > 0 and compiled >= sources
        assert host.check_output(f"ls -A {LAYOUT.install_dir}/wheelhouse") == ""
    assert airflow(host, "version").splitlines()[-1] == RELEASE.version


def test_config_is_celery_with_fab_auth(host: Host) -> None:
    assert airflow(host, "config", "get-value", "core", "executor") == "CeleryExecutor"
    assert airflow(host, "config", "get-value", "core", "auth_manager").endswith("FabAuthManager")
    url = airflow(host, "config", "get-value", "core", "execution_api_server_url")
    assert (
        url == f"http://{host.ansible.get_variables()['ansible_host']}:{LAYOUT.api_port}/execution/"
    )


def test_secrets_reach_airflow_from_the_environment_file(host: Host) -> None:
    assert airflow(host, "config", "get-value", "api_auth", "jwt_secret") == secret("jwt_secret")
    assert airflow(host, "config", "get-value", "core", "fernet_key") == secret("fernet") + "="


def test_config_and_secret_files_are_private(host: Host) -> None:
    with host.sudo():
        for path in (str(LAYOUT.config_file), str(LAYOUT.env_file)):
            f = host.file(path)
            assert (f.user, f.group, f.mode) == ("root", "airflow", 0o640), path
        assert secret("jwt_secret") not in host.file(str(LAYOUT.config_file)).content_string
        assert host.file(str(CONFIG)).mode == 0o750


def test_every_inventory_host_resolves(host: Host) -> None:
    name = host.ansible.get_variables()["inventory_hostname"]
    assert host.addr(name).ip_addresses == [host.ansible.get_variables()["ansible_host"]]


def test_time_sync_is_left_to_the_container_host(host: Host) -> None:
    # The scenario's host is a container on the bare image: it shares its host's clock, so
    # the role installs no NTP daemon there (on a VM it installs systemd-timesyncd).
    assert host.file("/.dockerenv").exists
    assert not host.package("systemd-timesyncd").is_installed


def bundles(host: Host) -> dict[str, dict[str, Any]]:
    config = airflow(host, "config", "get-value", "dag_processor", "dag_bundle_config_list")
    return {b["name"]: b for b in json.loads(config)}


def test_every_bundle_is_configured_in_order(host: Host) -> None:
    found = bundles(host)
    assert [(name, b["classpath"].rsplit(".", 1)[-1]) for name, b in found.items()] == [
        ("dags-folder", "LocalDagBundle"),
        ("team-a", "GitDagBundle"),
        ("team-b", "GitDagBundle"),
    ]
    assert found["team-a"]["kwargs"] == {
        "git_conn_id": "git_team_a",
        "tracking_ref": "production",
        "subdir": "dags",
        "refresh_interval": 60,
    }
    assert (
        found["team-b"]["kwargs"]["refresh_interval"]
        == DEFAULTS["airflow_dag_bundle_refresh_interval"]
    )
    assert found["team-b"]["kwargs"]["tracking_ref"] == "main"


def test_local_bundle_dags_are_copied(host: Host) -> None:
    folder = bundles(host)["dags-folder"]["kwargs"]["path"]
    project_dags = Path(__file__).parents[5] / "dags"
    expected = sorted(p.name for p in project_dags.glob("*.py"))
    with host.sudo():
        assert sorted(n for n in host.file(folder).listdir() if n.endswith(".py")) == expected
        assert host.file(f"{folder}/{expected[0]}").user == "airflow"


def git_hook(host: Host, conn_id: str, expression: str) -> str:
    """Evaluate `expression` on the git provider's GitHook for `conn_id`, as Airflow builds it."""
    code = (
        "from airflow.providers.git.hooks.git import GitHook; "
        f"hook = GitHook(git_conn_id='{conn_id}'); print({expression})"
    )
    with host.sudo("airflow"):
        output = str(host.check_output(f'{WITH_ENV} {LAYOUT.python} -c "{code}"'))
    return output.splitlines()[-1]  # Airflow may log warnings to stdout first


def test_ssh_bundle_uses_its_deploy_key_and_pinned_host_key(host: Host) -> None:
    ssh = git_hook(host, "git_team_a", "hook._build_ssh_command(hook.key_file)")
    assert f"-i {CONFIG}/git/team-a.key" in ssh
    assert "StrictHostKeyChecking=yes" in ssh
    assert f"UserKnownHostsFile={CONFIG}/git/team-a.known_hosts" in ssh
    assert (
        git_hook(host, "git_team_a", "hook.repo_url")
        == "ssh://git@git.example.invalid/team-a/dags.git"
    )
    key = host.file(f"{CONFIG}/git/team-a.key")
    with host.sudo():
        assert (key.user, key.mode) == ("airflow", 0o600)
        assert key.content_string.strip() == EPHEMERAL.joinpath("deploy_key").read_text().strip()
        pinned = host.file(f"{CONFIG}/git/team-a.known_hosts").content_string
    assert pinned.startswith("git.example.invalid ssh-ed25519 ")


def test_https_bundle_gets_its_token(host: Host) -> None:
    assert git_hook(host, "git_team_b", "hook.user_name") == "robot"
    assert git_hook(host, "git_team_b", "hook.auth_token") == secret("team_b_token")
    assert not host.file(f"{CONFIG}/git/team-b.key").exists


def test_services_get_a_temporary_folder_they_may_execute_from(host: Host) -> None:
    """git's credential helper for tokens is a script in TMPDIR; /tmp may be noexec."""
    folder = LAYOUT.home / "tmp"
    tmp = host.file(str(folder))
    with host.sudo():
        assert f"TMPDIR={folder}" in host.file(str(LAYOUT.env_file)).content_string
        assert (tmp.user, tmp.mode) == (LAYOUT.user, 0o700)
    assert "noexec" not in host.mount_point("/").options
