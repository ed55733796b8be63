"""The pieces `make run` is built from: child processes, readiness, its own Redis."""

from __future__ import annotations

import socket
import sys
import threading
import time
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import pytest

from model_trainer.demo import _redis_url, _wait_until, free_port, running
from platform_workers.redis_conn import redis_from_url


def test_a_child_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    started = time.monotonic()
    with running([sys.executable, "-c", stubborn], {}, tmp_path / "x.log", stop_timeout=0.5) as p:
        time.sleep(0.3)  # let it install its handler
    assert p.returncode == -9
    assert time.monotonic() - started < 10


def test_output_goes_to_the_log(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "hello.log"
    with running([sys.executable, "-c", "print('hello')"], {}, log) as process:
        process.wait()
    assert log.read_text() == "hello\n"


def test_waiting_for_a_server_that_never_answers_times_out() -> None:
    port = free_port()
    with (
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=0.2) as probe,
        pytest.raises(TimeoutError, match="/readyz"),
    ):
        _wait_until("/readyz", time.monotonic() + 0.5, probe)


def test_without_redis_url_the_demo_starts_its_own_redis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    with ExitStack() as stack:
        url = _redis_url(stack, {}, tmp_path)
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        client = redis_from_url(url)
        assert client.ping() is True
        client.close()
    assert (tmp_path / "redis.log").is_file()


def test_redis_url_from_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://example:1/2")
    with ExitStack() as stack:
        assert _redis_url(stack, {}, tmp_path) == "redis://example:1/2"


class _NotReady(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(503)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


def test_waiting_for_a_server_that_stays_unready_times_out() -> None:
    server = HTTPServer(("127.0.0.1", 0), _NotReady)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base_url = f"http://127.0.0.1:{server.server_address[1]}"
        with httpx.Client(base_url=base_url, timeout=1.0) as probe, pytest.raises(TimeoutError):
            _wait_until("/readyz", time.monotonic() + 0.5, probe)
    finally:
        server.shutdown()
        server.server_close()
