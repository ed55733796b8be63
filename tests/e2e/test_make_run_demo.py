"""`make run` end to end: the demo starts the API and a worker, trains, follows, samples."""

from __future__ import annotations

import subprocess
import sys

from model_trainer.settings import Settings


def test_demo_trains_follows_samples_and_scores(
    service_env: dict[str, str], settings: Settings
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "model_trainer.cli", "demo", "--size", "tiny", "--max-steps", "30"],
        env=service_env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "uploaded corpus" in out
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
