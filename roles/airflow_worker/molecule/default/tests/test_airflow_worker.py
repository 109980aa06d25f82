"""A Celery worker named after its host that answers, and stops without killing tasks."""

from __future__ import annotations

from testinfra.host import Host

from clusterops.layout import LAYOUT

CELERY = (
    f"{LAYOUT.with_env} {LAYOUT.celery} "
    "--app=airflow.providers.celery.executors.celery_executor.app"
)


def name(host: Host) -> str:
    return str(host.ansible.get_variables()["inventory_hostname"])


def test_service_runs_and_starts_at_boot(host: Host) -> None:
    service = host.service("airflow-worker")
    assert service.is_running
    assert service.is_enabled


def test_answers_a_ping_under_its_inventory_name(host: Host) -> None:
    with host.sudo("airflow"):
        out = host.check_output(f"{CELERY} inspect ping --destination=celery@{name(host)}")
    assert f"celery@{name(host)}: OK" in out


def test_reports_its_stats(host: Host) -> None:
    """Flower's worker page and `add_worker.py` read these; they fail as a whole when one
    of the settings cannot be sent as JSON."""
    with host.sudo("airflow"):
        out = host.check_output(f"{CELERY} inspect stats --destination=celery@{name(host)}")
    assert f"celery@{name(host)}: OK" in out
    assert "'max-concurrency'" in out or '"max-concurrency"' in out


def test_consumes_the_configured_queues(host: Host) -> None:
    with host.sudo("airflow"):
        out = host.check_output(f"{CELERY} inspect active_queues --destination=celery@{name(host)}")
    assert "'name': 'default'" in out


def test_stop_waits_for_running_tasks(host: Host) -> None:
    props = host.check_output(
        "systemctl show airflow-worker -p KillMode,KillSignal,TimeoutStopUSec"
    )
    assert sorted(props.splitlines()) == ["KillMode=mixed", "KillSignal=15", "TimeoutStopUSec=1h"]


def test_serves_task_logs_to_the_masters(host: Host) -> None:
    assert (
        host.socket(f"tcp://0.0.0.0:{LAYOUT.log_server_port}").is_listening
        or host.socket(f"tcp://:::{LAYOUT.log_server_port}").is_listening
    )


def test_api_proxy_listens_on_loopback_only(host: Host) -> None:
    assert host.service("haproxy").is_running
    sockets = [s for s in host.socket.get_listening_sockets() if s.startswith("tcp://")]
    proxy = LAYOUT.api_proxy_port
    assert [s for s in sockets if s.endswith(f":{proxy}")] == [f"tcp://127.0.0.1:{proxy}"]


def _proxy_section(config: str, name: str) -> list[str]:
    """The server names of one section (`listen database`, `backend masters`) of haproxy.cfg."""
    servers: list[str] = []
    inside = False
    for line in config.splitlines():
        if line and not line.startswith(" "):
            inside = line.split()[1:2] == [name]
        elif inside and line.strip().startswith("server "):
            servers.append(line.split()[1])
    return servers


def test_api_proxy_balances_every_master(host: Host) -> None:
    variables = host.ansible.get_variables()
    config = host.file("/etc/haproxy/haproxy.cfg").content_string
    assert _proxy_section(config, "masters") == variables["groups"]["airflow_master"]
    assert _proxy_section(config, "database") == variables["groups"]["postgres"]


def test_database_proxy_reaches_the_primary(host: Host) -> None:
    with host.sudo():
        stat = host.check_output('echo "show stat" | socat stdio /run/haproxy/admin.sock')
    rows = [line.split(",") for line in stat.splitlines() if line.startswith("database,")]
    states = {row[1]: row[17] for row in rows if row[1] not in ("FRONTEND", "BACKEND")}
    assert states == {"instance": "UP"}
    listening = [s for s in host.socket.get_listening_sockets() if s.startswith("tcp://")]
    port = LAYOUT.database_proxy_port
    assert [s for s in listening if s.endswith(f":{port}")] == [f"tcp://127.0.0.1:{port}"]
