"""The pieces `make run` is built from: child processes, readiness, its own Redis."""

from __future__ import annotations

import sys
import threading
import time
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from model_trainer.demo import _redis_url, _wait_until, free_port, running
from platform_workers.redis_conn import redis_from_url
from platform_workers.redis_server import redis_server_binary


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
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    with ExitStack() as stack:
        url = _redis_url(stack, {}, tmp_path)
        client = redis_from_url(url)
        assert client.ping() is True
        client.close()
    port = url.rsplit(":", 1)[1].split("/")[0]
    assert f"redis: {redis_server_binary()} on 127.0.0.1:{port}" in capsys.readouterr().out
    assert (tmp_path / "redis.log").is_file()


def test_redis_url_from_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    with ExitStack() as stack:
        assert _redis_url(stack, {}, tmp_path) == redis_url
    assert not (tmp_path / "redis.log").exists()


def test_a_redis_url_that_does_not_answer_fails_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    started = time.monotonic()
    with ExitStack() as stack, pytest.raises(RedisConnectionError):
        _redis_url(stack, {}, tmp_path)
    assert time.monotonic() - started < 5


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
