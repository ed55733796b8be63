"""Gradient and validation health alerts, and early stopping, as the loop consults them."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from model_trainer.errors import ModelTrainerError
from model_trainer.storage.checkpoints import (
    describe,
    find_checkpoint,
    list_checkpoints,
    read_metrics,
    retained,
    write_metrics,
)
from model_trainer.training.early_stopping import EarlyStopping
from model_trainer.training.health import HealthMonitor


def test_each_alert_fires_when_crossed_and_again_only_after_recovering() -> None:
    monitor = HealthMonitor(
        {"grad_norm_max": 10.0, "grad_norm_min": 0.01, "val_loss_spike_ratio": 0.2}
    )
    assert monitor.check_gradients(1, 1.0, 2.0) == []
    assert [a["kind"] for a in monitor.check_gradients(2, 1.0, 50.0)] == ["exploding_gradients"]
    assert monitor.check_gradients(3, 1.0, 60.0) == []  # still above: not repeated
    assert monitor.check_gradients(4, 1.0, 5.0) == []
    again = monitor.check_gradients(5, 1e-3, 70.0)
    assert [(a["kind"], a["step"]) for a in again] == [
        ("exploding_gradients", 5),
        ("vanishing_gradients", 5),
    ]
    assert again[1]["message"] == (
        "vanishing gradients: gradient norm 0.001 is below 0.01 at step 5"
    )


def test_a_val_loss_spike_is_measured_against_the_best_so_far() -> None:
    monitor = HealthMonitor(
        {"grad_norm_max": None, "grad_norm_min": None, "val_loss_spike_ratio": 0.2}
    )
    assert monitor.check_validation(10, 2.0) == []
    assert monitor.check_validation(20, 1.0) == []
    assert monitor.check_validation(30, 1.1) == []
    (spike,) = monitor.check_validation(40, 1.5)
    assert (spike["kind"], spike["step"], spike["value"]) == ("val_loss_spike", 40, 1.5)
    assert spike["threshold"] == pytest.approx(1.2)
    assert "val_loss 1.5 is above 1.2" in spike["message"]


def test_switched_off_thresholds_never_alert() -> None:
    monitor = HealthMonitor(
        {"grad_norm_max": None, "grad_norm_min": None, "val_loss_spike_ratio": None}
    )
    assert monitor.check_gradients(1, 0.0, 1e9) == []
    assert monitor.check_validation(1, 1.0) == monitor.check_validation(2, 9.0) == []


def test_early_stopping_counts_stale_evaluations_and_tracks_the_best() -> None:
    stopper = EarlyStopping(patience=2, min_delta=0.1)
    assert not stopper.update(1, 2.0)
    assert not stopper.update(2, 1.95)  # better, but by less than min_delta: stale 1
    assert (stopper.best_loss, stopper.best_step) == (1.95, 2)
    assert stopper.update(3, 2.5)  # stale 2: stop
    watcher = EarlyStopping(patience=None, min_delta=0.0)
    assert not any(watcher.update(step, 5.0) for step in range(10))
    assert watcher.best_step == 0


def _checkpoint(root: Path, step: int, val_loss: float | None, train_loss: float | None) -> Path:
    directory = root / f"step_{step:09d}"
    directory.mkdir(parents=True)
    (directory / "model.safetensors").write_bytes(b"x" * step)
    write_metrics(
        directory,
        {
            "step": step,
            "epoch": 0,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "created_at": "2026-12-02T00:00:00+00:00",
        },
    )
    return directory


def test_checkpoints_list_with_their_metrics_and_sizes(tmp_path: Path) -> None:
    _checkpoint(tmp_path, 5, 1.5, 2.0)
    damaged = _checkpoint(tmp_path, 7, None, 1.0)
    (damaged / "metrics.json").write_bytes(b"{")
    (tmp_path / ".step_000000009.tmp").mkdir()
    listed = list_checkpoints(tmp_path)
    assert [(c["step"], c["val_loss"], c["train_loss"]) for c in listed] == [(5, 1.5, 2.0)]
    metrics_bytes = len((tmp_path / "step_000000005" / "metrics.json").read_bytes())
    assert listed[0]["bytes"] == 5 + metrics_bytes
    assert list_checkpoints(tmp_path / "missing") == []
    with pytest.raises(ModelTrainerError) as caught:
        read_metrics(damaged)
    assert caught.value.code == "ARTIFACT_CORRUPT"


def test_find_checkpoint_names_the_missing_step(tmp_path: Path) -> None:
    kept = _checkpoint(tmp_path, 5, 1.5, 2.0)
    assert find_checkpoint(tmp_path, 5, "r") == kept
    with pytest.raises(ModelTrainerError) as caught:
        find_checkpoint(tmp_path, 6, "r")
    assert caught.value.code == "CHECKPOINT_NOT_FOUND"
    assert caught.value.details == {"field": "step", "run_id": "r", "step": 6}


def test_retention_ranks_val_then_train_loss_then_unmeasured(tmp_path: Path) -> None:
    unmeasured = _checkpoint(tmp_path, 1, None, None)
    by_train = _checkpoint(tmp_path, 2, None, 0.5)
    by_val = _checkpoint(tmp_path, 3, 3.0, 9.0)
    broken = tmp_path / "step_000000004"
    broken.mkdir()
    newest = _checkpoint(tmp_path, 5, None, None)
    dirs = [unmeasured, by_train, by_val, broken, newest]
    assert retained(dirs, keep_last=1, keep_best=1) == {newest, by_val}
    assert retained(dirs, keep_last=1, keep_best=2) == {newest, by_val, by_train}
    assert describe(by_val)["bytes"] == 3 + len(orjson.dumps(read_metrics(by_val)))
