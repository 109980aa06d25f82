"""Draining a worker against a real HTTP server on localhost that plays Flower's API: an
unanswered Flower is no proof that the worker is idle."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from clusterops import runner, worker_cli
from clusterops.cluster import AirflowAPI, Endpoints, Flower
from clusterops.console import Failure
from clusterops.workers import Drain, Exit, FlowerUnanswered

WORKER = "celery@worker-1"
TASK = {
    "id": "c1",
    "name": "execute_workload",
    "args": '(\'{"ti":{"task_id":"hold","dag_id":"long_tasks","run_id":"r1","try_number":1}',
    "time_start": 1.0,
}


class FlowerPlay(ThreadingHTTPServer):
    """Flower's API for one worker. `status` is what the GETs get: a 5xx plays a Flower that
    fails (its broker connection down); `silent_after_cancel` makes it fail once the worker's
    consumers are cancelled. Each POST (cancel-consumer, add-consumer) is recorded."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), FlowerHandler)
        self.status = HTTPStatus.OK
        self.alive = True
        self.active: list[dict[str, Any]] = [TASK]
        self.silent_after_cancel = False
        self.gets = 0
        self.posts: list[str] = []

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class FlowerHandler(BaseHTTPRequestHandler):
    server: FlowerPlay

    def do_GET(self) -> None:
        self.server.gets += 1
        if self.server.status != HTTPStatus.OK:
            self._answer(self.server.status, {"error": "broker unavailable"})
            return
        query = parse_qs(urlsplit(self.path).query)
        if query.get("status") == ["true"]:
            self._answer(HTTPStatus.OK, {WORKER: self.server.alive})
            return
        report = {
            "stats": {"pid": 1},
            "active_queues": [{"name": "default"}],
            "active": self.server.active,
            "reserved": [],
        }
        self._answer(HTTPStatus.OK, {WORKER: report})

    def do_POST(self) -> None:
        action = urlsplit(self.path).path.split("/")[-2]
        queue = parse_qs(urlsplit(self.path).query)["queue"][0]
        self.server.posts.append(f"{action} {queue}")
        if action == "cancel-consumer" and self.server.silent_after_cancel:
            self.server.status = HTTPStatus.SERVICE_UNAVAILABLE
        self._answer(HTTPStatus.OK, {"message": "ok"})

    def _answer(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: pytest shows what matters."""


@pytest.fixture
def flower() -> Iterator[FlowerPlay]:
    server = FlowerPlay()
    # A short poll interval: shutdown() waits for it.
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def refusing() -> str:
    """The URL of a port nobody listens on: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def mute() -> Iterator[str]:
    """The URL of a port that takes connections and never answers: requests time out."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


class FakeClock:
    """The drain's clock: its sleep moves time on at once, and may change the server."""

    def __init__(self, on_sleep: Callable[[int], None] | None = None) -> None:
        self.now = 1000.0
        self.sleeps = 0
        self.on_sleep = on_sleep

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.sleeps += 1
        if self.on_sleep:
            self.on_sleep(self.sleeps)


def drain_of(url: str, timeout: float, clock: FakeClock, request_timeout: float = 5) -> Drain:
    client = Flower(url, "flower", "secret", timeout=request_timeout)
    return Drain(client, WORKER, timeout, 2.0, clock.time, clock.sleep)


def unanswered(url: str, seconds: int, why: str) -> str:
    return (
        rf"^Flower at {re.escape(url)} did not answer for {seconds} s \({why}\): cannot tell "
        rf"whether {WORKER} is drained; nothing was removed$"
    )


def test_a_failing_flower_is_asked_until_the_deadline_then_named(flower: FlowerPlay) -> None:
    flower.status = HTTPStatus.SERVICE_UNAVAILABLE
    clock = FakeClock()
    with pytest.raises(FlowerUnanswered, match=unanswered(flower.url, 10, "HTTP 503")) as caught:
        drain_of(flower.url, 10, clock).wait()
    assert caught.value.exit_code == Exit.FAILED
    assert flower.gets == 6  # at 0, 2, 4, 6, 8 and 10 s


def test_a_refused_connection_is_no_drained_worker(refusing: str) -> None:
    with pytest.raises(FlowerUnanswered, match=unanswered(refusing, 4, "Connection refused")):
        drain_of(refusing, 4, FakeClock()).wait()


def test_a_flower_that_times_out_is_no_drained_worker(mute: str) -> None:
    with pytest.raises(FlowerUnanswered, match=unanswered(mute, 2, "timed out")):
        drain_of(mute, 2, FakeClock(), request_timeout=0.2).wait()


def test_the_drain_goes_on_once_flower_answers_again(flower: FlowerPlay) -> None:
    """Silent for 4 s, then the worker has finished its task: drained, before the deadline."""
    flower.status = HTTPStatus.BAD_GATEWAY

    def recover(sleeps: int) -> None:
        if sleeps == 2:
            flower.status, flower.active = HTTPStatus.OK, []

    clock = FakeClock(recover)
    assert drain_of(flower.url, 60, clock).wait() == []
    assert clock.sleeps == 2


def test_the_silence_counted_is_the_last_one(flower: FlowerPlay) -> None:
    """Busy, silent, busy again, silent to the end: the error counts the last silence."""

    def script(sleeps: int) -> None:
        failing = sleeps in (1, 3, 4, 5)  # at 2 s, then from 6 s on
        flower.status = HTTPStatus.INTERNAL_SERVER_ERROR if failing else HTTPStatus.OK

    with pytest.raises(FlowerUnanswered, match=unanswered(flower.url, 4, "HTTP 500")):
        drain_of(flower.url, 10, FakeClock(script)).wait()


@pytest.mark.parametrize(("alive", "active"), [(False, [TASK]), (True, [])])
def test_flower_saying_the_worker_is_offline_or_idle_is_drained(
    flower: FlowerPlay, alive: bool, active: list[dict[str, Any]]
) -> None:
    flower.alive, flower.active = alive, active
    clock = FakeClock()
    assert drain_of(flower.url, 60, clock).wait() == []
    assert clock.sleeps == 0


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """remove_main's cluster is the Flower the test gives; no playbook may run."""
    urls: list[str] = []

    def endpoints(inventory: Path, password_file: Path) -> Endpoints:
        flower = Flower(urls[0], "flower", "secret", timeout=5)
        return Endpoints(AirflowAPI("http://127.0.0.1:9", "admin", "secret"), flower)

    def no_playbook(*args: object, **kwargs: object) -> None:
        raise AssertionError("a playbook was run")

    monkeypatch.setattr(Endpoints, "from_inventory", endpoints)
    monkeypatch.setattr(runner, "run_playbook", no_playbook)
    # The CLI exports the vault password file for Ansible; set first so that it is undone.
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", "")
    monkeypatch.delenv("ANSIBLE_VAULT_PASSWORD_FILE")
    return urls


def test_remove_gives_the_queues_back_when_flower_stops_answering(
    lab_inventory: Path, flower: FlowerPlay, cluster: list[str]
) -> None:
    cluster.append(flower.url)
    flower.silent_after_cancel = True
    hosts = lab_inventory / "hosts.yml"
    before = hosts.read_bytes()
    with pytest.raises(Failure) as caught:
        worker_cli.remove_main(["worker-1", "-i", str(lab_inventory), "--timeout", "0.2"])
    assert caught.value.exit_code == Exit.FAILED
    assert str(caught.value).startswith(f"Flower at {flower.url} did not answer for 0 s (HTTP 503)")
    assert str(caught.value).endswith(
        f"cannot tell whether {WORKER} is drained; nothing was removed; it takes tasks again "
        "and stays in the inventory"
    )
    assert flower.posts == ["cancel-consumer default", "add-consumer default"]
    assert hosts.read_bytes() == before


def test_remove_stops_before_the_drain_when_flower_does_not_answer(
    lab_inventory: Path, refusing: str, cluster: list[str]
) -> None:
    cluster.append(refusing)
    hosts = lab_inventory / "hosts.yml"
    before = hosts.read_bytes()
    with pytest.raises(Failure) as caught:
        worker_cli.remove_main(["worker-1", "-i", str(lab_inventory)])
    assert caught.value.exit_code == Exit.FAILED
    assert str(caught.value) == (
        f"Flower at {refusing} did not answer (Connection refused): cannot tell whether "
        f"{WORKER} holds tasks; nothing was changed"
    )
    assert hosts.read_bytes() == before
