"""The deployed cluster, tested from outside as its users meet it.

Runs against the lab after `ansible-playbook site.yml` (make integration deploys first).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from testinfra.host import Host

from clusterops import datatier, secrets
from clusterops.cluster import AirflowAPI, Credentials, Flower, wait_for
from clusterops.lab.hosts import LabSpec
from clusterops.layout import LAYOUT
from clusterops.paths import LAB_INVENTORY, LAB_VAULT_PASSWORD

from .conftest import lab_host
from .masters import parsing, vip_holders

pytestmark = pytest.mark.lab

MASTER_UNITS = ["api-server", "scheduler", "dag-processor", "triggerer", "flower"]


def test_health_reports_every_component_healthy(api: AirflowAPI) -> None:
    health = api.health()  # HTTP 200 even when unhealthy: the body is what counts
    assert set(health) >= {"metadatabase", "scheduler", "triggerer", "dag_processor"}
    assert {name: part["status"] for name, part in health.items()} == dict.fromkeys(
        health, "healthy"
    )


@pytest.mark.parametrize("unit", MASTER_UNITS)
def test_master_services_run_and_start_at_boot(lab: LabSpec, unit: str) -> None:
    for name in lab.group("airflow_master"):
        service = lab_host(lab, name).service(f"airflow-{unit}")
        assert service.is_running, name
        assert service.is_enabled, name


def test_worker_services_run_and_start_at_boot(lab: LabSpec) -> None:
    for name in lab.group("airflow_worker"):
        service = lab_host(lab, name).service("airflow-worker")
        assert service.is_running, name
        assert service.is_enabled, name


def listening(host: Host, port: int) -> set[str]:
    sockets = host.socket.get_listening_sockets()
    return {s.rsplit(":", 1)[0].removeprefix("tcp://") for s in sockets if s.endswith(f":{port}")}


def test_masters_listen_only_on_their_cluster_address_and_the_vip(lab: LabSpec, vip: str) -> None:
    for name in lab.group("airflow_master"):
        host, address = lab_host(lab, name), lab.host(name).address
        # HAProxy listens on the virtual IP on every master (a transparent bind).
        for port in (LAYOUT.api_port, LAYOUT.flower_port):
            assert listening(host, port) == {address, vip}, (name, port)
        assert listening(host, LAYOUT.scheduler_health_port) == {address}, name


def test_exactly_one_master_holds_the_vip_and_it_answers(
    lab: LabSpec, masters: list[str], vip: str, api: AirflowAPI
) -> None:
    assert len(vip_holders(lab, vip)) == 1
    assert vip in api.base_url
    assert api.health()["metadatabase"]["status"] == "healthy"


def test_the_vip_spreads_api_requests_over_every_master(lab: LabSpec, masters: list[str]) -> None:
    holder = lab_host(lab, masters[0])
    servers = proxy_servers(holder, "api_servers")
    assert servers == dict.fromkeys(masters, "UP")


def test_one_dag_processor_parses_at_a_time(lab: LabSpec, masters: list[str]) -> None:
    """Every master runs airflow-dag-processor; only the lock's holder runs the parser."""
    assert len(parsing(lab, masters)) == 1


def proxy_servers(host: Host, backend: str = "masters") -> dict[str, str]:
    """HAProxy's view of the servers of one backend of a host's local proxy (masters: the
    API servers, database: the PostgreSQL members): name -> UP / DOWN."""
    with host.sudo():
        out = host.check_output('echo "show stat" | socat stdio /run/haproxy/admin.sock')
    rows = [line.split(",") for line in out.splitlines() if line.startswith(f"{backend},")]
    return {row[1]: row[17] for row in rows if row[1] not in ("FRONTEND", "BACKEND")}


def test_workers_reach_every_master_through_their_api_proxy(lab: LabSpec) -> None:
    masters = lab.group("airflow_master")
    for name in lab.group("airflow_worker"):
        host = lab_host(lab, name)
        with host.sudo():
            config = host.file(str(LAYOUT.config_file)).content_string
        proxy = f"127.0.0.1:{LAYOUT.api_proxy_port}"
        assert f"execution_api_server_url = http://{proxy}/execution/" in config, name
        assert listening(host, LAYOUT.api_proxy_port) == {"127.0.0.1"}, name
        assert proxy_servers(host) == dict.fromkeys(masters, "UP"), name


def test_every_airflow_host_reaches_the_primary_through_its_proxy(lab: LabSpec) -> None:
    members = lab.group("postgres")
    primary = datatier.leader(lab.host(name).address for name in members)
    assert primary is not None
    expected = {name: "UP" if name == primary.name else "DOWN" for name in members}
    for name in lab.group("airflow"):
        host = lab_host(lab, name)
        assert listening(host, LAYOUT.database_proxy_port) == {"127.0.0.1"}, name
        assert proxy_servers(host, "database") == expected, name


DATA_PORTS = {
    "postgres": (LAYOUT.database_port, LAYOUT.patroni_port),
    "etcd": (LAYOUT.etcd_port,),
    "redis": (LAYOUT.redis_port, LAYOUT.sentinel_port),
}


@pytest.mark.parametrize("group", sorted(DATA_PORTS))
def test_data_tier_listens_on_localhost_and_cluster_address_only(lab: LabSpec, group: str) -> None:
    for name in lab.group(group):
        host, address = lab_host(lab, name), lab.host(name).address
        for port in DATA_PORTS[group]:
            found = listening(host, port)
            assert address in found, (name, port)
            assert found <= {address, "127.0.0.1"}, (name, port, found)


@pytest.mark.parametrize("name", ["airflow.env", "flower.env"])
def test_secret_files_are_readable_by_airflow_only(lab: LabSpec, master: str, name: str) -> None:
    host, path = lab_host(lab, master), str(LAYOUT.config_dir / name)
    with host.sudo():
        secret = host.file(path)
        assert (secret.user, secret.group, secret.mode) == ("root", LAYOUT.user, 0o640)
    assert not host.file(path).exists  # not even visible to other users: the folder is 0750


def test_config_holds_no_secret(lab: LabSpec, master: str) -> None:
    config = lab_host(lab, master).run(f"sudo cat {LAYOUT.config_file}").stdout
    assert "[core]" in config
    vault = secrets.Vault(
        secrets.vault_file(LAB_INVENTORY), secrets.read_password(LAB_VAULT_PASSWORD)
    )
    leaked = [name for name, value in vault.read().items() if value in config]
    assert leaked == []


@pytest.mark.parametrize("tier", ["airflow_master", "airflow_worker"])
def test_the_hosts_of_a_tier_share_the_same_secrets(lab: LabSpec, tier: str) -> None:
    digests = {
        name: lab_host(lab, name).run(f"sudo sha256sum {LAYOUT.env_file}").stdout.split()[0]
        for name in lab.group(tier)
    }
    assert len(set(digests.values())) == 1, digests


def test_smoke_dag_runs_on_both_workers(
    lab: LabSpec, smoke_run: tuple[dict[str, Any], list[dict[str, Any]]]
) -> None:
    run, tis = smoke_run
    assert run["state"] == "success"
    mapped = [ti for ti in tis if ti["task_id"] == "where_am_i"]
    assert len(mapped) == 24
    assert {ti["state"] for ti in tis} == {"success"}
    hosts = Counter(ti["hostname"] for ti in mapped)
    assert set(hosts) == set(lab.group("airflow_worker")), hosts


def test_worker_log_is_readable_through_the_master(
    api: AirflowAPI, smoke_run: tuple[dict[str, Any], list[dict[str, Any]]]
) -> None:
    _, tis = smoke_run
    for worker in sorted({ti["hostname"] for ti in tis}):
        ti = next(t for t in tis if t["task_id"] == "where_am_i" and t["hostname"] == worker)
        log = api.task_log(ti)
        assert f"task {ti['map_index']} running on {worker}" in log, log[-2000:]


def test_flower_lists_every_worker(lab: LabSpec, master: str, credentials: Credentials) -> None:
    flower = Flower(
        f"http://{lab.host(master).address}:{LAYOUT.flower_port}",
        credentials.flower_user,
        credentials.flower_password,
    )
    expected = {f"celery@{name}" for name in lab.group("airflow_worker")}

    def complete() -> set[str] | None:
        # Flower asks the workers over the broker; a slow reply is missing from one answer.
        # A worker removed earlier (test_scaling) stays in its lists, offline, with its last
        # report: only the live ones count.
        alive = flower.alive()
        seen = {name for name, report in flower.workers().items() if alive.get(name) and report}
        return seen if seen == expected else None

    assert wait_for("Flower to list every worker", complete, timeout=60) == expected


def test_flower_refuses_anonymous_users(lab: LabSpec, master: str) -> None:
    flower = Flower(
        f"http://{lab.host(master).address}:{LAYOUT.flower_port}", LAYOUT.flower_user, "wrong"
    )
    with pytest.raises(Exception, match="401"):
        flower.workers()
