"""The real entry points with no Redis behind them: the worker exits with one line, the API
starts, says why it will answer 503, and the CLI says what is missing behind the API."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from tests.support.processes import free_port, stop, wait_for

from model_trainer import cli
from model_trainer.client import API_KEY_ENV
from model_trainer.settings import Settings

# Well formed, so the API has to look it up in Redis to judge it.
SOME_KEY = "mtk_0123456789ab_" + "a" * 43


@pytest.fixture
def no_redis_env(settings: Settings) -> dict[str, str]:
    """REDIS_URL names a port where nothing listens."""
    env = dict(os.environ)
    env["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    env["ARTIFACTS_ROOT"] = str(settings["artifacts_root"])
    env["DATA_ROOT"] = str(settings["data_root"])
    return env


def test_a_worker_without_redis_prints_one_line_and_exits_2(no_redis_env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "model_trainer.cli", "worker"],
        env=no_redis_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: cannot reach Redis (Error 111 connecting to 127.0.0.1:")
    assert "set REDIS_URL to a running one" in done.stderr


def test_the_api_without_redis_serves_503_and_the_cli_says_why(
    no_redis_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "api.err"
    with log.open("wb") as sink:
        api = subprocess.Popen(
            [sys.executable, "-m", "model_trainer.cli", "api", "--port", str(port)],
            env=no_redis_env,
            stderr=sink,
        )

    def answers() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(answers, timeout=30, what="the API")
        assert httpx.get(f"{url}/readyz", timeout=5).status_code == 503
        monkeypatch.setenv(API_KEY_ENV, SOME_KEY)
        for argv in (["jobs"], ["follow", "j1"]):
            assert cli.main(["--url", url, *argv]) == 2
            err = capsys.readouterr().err
            assert err.startswith("error: HTTP 503 REDIS_UNAVAILABLE: ")
            assert err.endswith(f"(the API at {url} cannot reach its Redis: start it)\n")
    finally:
        stop(api)
    first = log.read_text().splitlines()[0]
    assert first.startswith("warning: cannot reach Redis (Error 111 connecting to 127.0.0.1:")
    assert first.endswith("; answering 503 REDIS_UNAVAILABLE until it does")
    assert "Traceback" not in log.read_text()
