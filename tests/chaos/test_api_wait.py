"""flows/api_wait.py against a closed port and against an API that comes up while the flow waits (a stdlib
HTTP server answering ``/api/health``: a stand-in for the real server, which tests/chaos/test_server_restart.py
restarts under a real run)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

import flows.api_wait
from flows.api_wait import PrefectApiUnavailable, wait_for_api
from scaling_matrix.adapters.local import free_port


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200 if self.path == "/api/health" else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"true")

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[Exception | None]:
    """Return the list every health check's result is appended to, in order."""
    seen: list[Exception | None] = []
    real = flows.api_wait.api_problem

    def recorded() -> Exception | None:
        seen.append(real())
        return seen[-1]

    monkeypatch.setattr(flows.api_wait, "api_problem", recorded)
    return seen


@pytest.fixture
def port() -> Iterator[int]:
    number = free_port()
    with temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{number}/api"}):
        yield number


def test_an_api_that_never_answers_fails_after_the_wait_naming_the_way_out(
        port: int, checks: list[Exception | None]) -> None:
    with pytest.raises(PrefectApiUnavailable, match=r"unreachable for 1 s .*cells are stored.*scaling-matrix report"):
        wait_for_api(timeout_s=1.0, interval_s=0.1)
    assert len(checks) >= 2 and all(c is not None for c in checks)  # it kept asking, not one refusal and out


def test_an_api_back_during_the_wait_ends_it(port: int, checks: list[Exception | None]) -> None:
    """The port is refused (nothing bound) until the first health check has failed, then answers."""
    servers: list[ThreadingHTTPServer] = []

    def serve_later() -> None:
        deadline = time.monotonic() + 30
        while not checks and time.monotonic() < deadline:  # one refused check first: the flow is waiting
            time.sleep(0.05)
        servers.append(ThreadingHTTPServer(("127.0.0.1", port), _Health))
        servers[0].serve_forever(poll_interval=0.1)

    threading.Thread(target=serve_later, daemon=True).start()
    try:
        waited = wait_for_api(timeout_s=30, interval_s=0.1)
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
    assert waited > 0 and servers  # the API came up while the flow waited
    assert checks[0] is not None and checks[-1] is None  # refused first, then answered: the wait ended it
