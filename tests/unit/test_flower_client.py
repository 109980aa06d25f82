"""The Flower client against a real HTTP server on localhost that plays Flower's control API."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from clusterops.cluster import Flower
from clusterops.console import Failure


class Scripted(ThreadingHTTPServer):
    """Answers each POST with the next status of `statuses`, and counts the POSTs."""

    def __init__(self, statuses: list[int]) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.statuses = statuses
        self.posts = 0


class Handler(BaseHTTPRequestHandler):
    server: Scripted

    def do_POST(self) -> None:
        status = self.server.statuses[min(self.server.posts, len(self.server.statuses) - 1)]
        self.server.posts += 1
        body = b'{"message": "ok"}' if status == HTTPStatus.OK else b"Failed: Unknown reason"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: pytest shows what matters."""


Serve = Callable[[list[int]], Scripted]


@pytest.fixture
def serve() -> Iterator[Serve]:
    servers: list[Scripted] = []

    def start(statuses: list[int]) -> Scripted:
        server = Scripted(statuses)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def flower_of(server: Scripted, timeout: float = 10) -> Flower:
    host, port = server.server_address[:2]
    return Flower(f"http://{host!s}:{port}", "flower", "secret", timeout=timeout)


def test_a_server_error_is_tried_again_until_flower_answers(serve: Serve) -> None:
    # What Flower does while its broker connection moves to a new Redis master.
    server = serve([HTTPStatus.INTERNAL_SERVER_ERROR, HTTPStatus.OK])
    flower_of(server).cancel_consumer("celery@worker-1", "default")
    assert server.posts == 2


def test_a_missed_reply_is_tried_again(serve: Serve) -> None:
    # Flower's 403 when the worker's reply did not come within its wait.
    server = serve([HTTPStatus.FORBIDDEN, HTTPStatus.OK])
    flower_of(server).add_consumer("celery@w-1", "default")
    assert server.posts == 2


def test_a_bad_request_is_final_and_named(serve: Serve) -> None:
    server = serve([HTTPStatus.BAD_REQUEST, HTTPStatus.OK])
    with pytest.raises(
        Failure, match="could not add-consumer queue 'default' of celery@w-1: HTTP 400"
    ):
        flower_of(server).add_consumer("celery@w-1", "default")
    assert server.posts == 1


def test_server_errors_end_after_the_timeout_with_the_last_answer(serve: Serve) -> None:
    server = serve([HTTPStatus.INTERNAL_SERVER_ERROR])
    with pytest.raises(Failure, match="could not cancel-consumer queue 'default' of w-1: HTTP 500"):
        flower_of(server, timeout=1).cancel_consumer("w-1", "default")
    assert server.posts >= 1
