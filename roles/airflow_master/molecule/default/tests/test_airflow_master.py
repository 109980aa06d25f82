"""A master: five healthy services, on the cluster address only, with authenticated UIs."""

from __future__ import annotations

import os
from http import HTTPStatus
from pathlib import Path

import pytest
import requests
from testinfra.host import Host

from clusterops.layout import LAYOUT

UNITS = ["api-server", "scheduler", "dag-processor", "triggerer", "flower"]


def secret(name: str) -> str:
    return (Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / f"secret_{name}").read_text().strip()


def address(host: Host) -> str:
    return str(host.ansible.get_variables()["ansible_host"])


@pytest.mark.parametrize("unit", UNITS)
def test_service_runs_and_starts_at_boot(host: Host, unit: str) -> None:
    service = host.service(f"airflow-{unit}")
    assert service.is_running
    assert service.is_enabled


@pytest.mark.parametrize("unit", UNITS)
def test_service_is_hardened_and_restarts(host: Host, unit: str) -> None:
    wanted = "User,Restart,NoNewPrivileges,ProtectSystem,ProtectHome,PrivateTmp"
    props = host.check_output(f"systemctl show airflow-{unit} -p {wanted}")
    assert sorted(props.splitlines()) == [
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "ProtectSystem=strict",
        "Restart=always",
        "User=airflow",
    ]


@pytest.mark.parametrize(
    "port", [LAYOUT.api_port, LAYOUT.flower_port, LAYOUT.scheduler_health_port]
)
def test_listens_on_the_cluster_address_only(host: Host, port: int) -> None:
    sockets = [s for s in host.socket.get_listening_sockets() if s.endswith(f":{port}")]
    assert sockets == [f"tcp://{address(host)}:{port}"]


# HTTP checks run from the controller, as a user or a load balancer would.
def test_health_body_reports_every_component_healthy(host: Host) -> None:
    body = requests.get(
        f"http://{address(host)}:{LAYOUT.api_port}/api/v2/monitor/health", timeout=30
    ).json()
    assert {name: part["status"] for name, part in body.items()} == {
        "metadatabase": "healthy",
        "scheduler": "healthy",
        "triggerer": "healthy",
        "dag_processor": "healthy",
    }


def test_scheduler_health_endpoint(host: Host) -> None:
    assert (
        requests.get(
            f"http://{address(host)}:{LAYOUT.scheduler_health_port}/health", timeout=30
        ).status_code
        == HTTPStatus.OK
    )


def login(host: Host, password: str) -> int:
    response = requests.post(
        f"http://{address(host)}:{LAYOUT.api_port}/auth/token",
        json={"username": LAYOUT.admin_user, "password": password},
        timeout=30,
    )
    return response.status_code


def test_admin_logs_in_with_the_vault_password_only(host: Host) -> None:
    assert login(host, secret("admin")) in {HTTPStatus.OK, HTTPStatus.CREATED}
    assert login(host, "not-the-password") == HTTPStatus.UNAUTHORIZED


def test_flower_needs_its_password(host: Host) -> None:
    url = f"http://{address(host)}:{LAYOUT.flower_port}/api/workers"
    assert requests.get(url, timeout=30).status_code == HTTPStatus.UNAUTHORIZED
    assert (
        requests.get(url, auth=(LAYOUT.flower_user, secret("flower")), timeout=30).status_code
        == HTTPStatus.OK
    )


def test_schema_is_migrated(host: Host) -> None:
    with host.sudo("airflow"):
        assert host.run("airflow db check-migrations --migration-wait-timeout 1").rc == 0
