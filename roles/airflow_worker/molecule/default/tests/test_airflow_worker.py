"""A Celery worker named after its host that answers, and stops without killing tasks."""

from __future__ import annotations

from testinfra.host import Host

CELERY = (
    "/opt/airflow/bin/with-airflow-env /opt/airflow/venv/bin/celery "
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
        host.socket("tcp://0.0.0.0:8793").is_listening or host.socket("tcp://:::8793").is_listening
    )
