"""A run's metrics history on disk: one point per step, torn tails tolerated, paging and
down-sampling for charts."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_trainer.errors import ModelTrainerError
from model_trainer.storage.run_metrics import (
    MetricPoint,
    append_point,
    downsample,
    page,
    read_points,
)


def _point(step: int, loss: float = 1.0, val_loss: float | None = None) -> MetricPoint:
    return {
        "step": step,
        "epoch": 0,
        "loss": loss,
        "val_loss": val_loss,
        "learning_rate": 0.1,
        "grad_norm": 2.0,
        "tokens_per_second": 100.0,
        "elapsed_s": float(step),
    }


def test_points_come_back_in_step_order_with_the_last_line_of_each_step(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    for point in (_point(10), _point(20), _point(20, val_loss=1.5), _point(30)):
        append_point(path, point)
    # a resumed attempt reports step 20 again, then goes on
    append_point(path, _point(20, loss=0.5))
    assert [(p["step"], p["loss"], p["val_loss"]) for p in read_points(path)] == [
        (10, 1.0, None),
        (20, 0.5, None),
        (30, 1.0, None),
    ]


def test_a_missing_file_is_an_empty_history(tmp_path: Path) -> None:
    assert read_points(tmp_path / "none.jsonl") == []


def test_a_torn_last_line_is_skipped_other_damage_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    append_point(path, _point(1))
    with path.open("ab") as out:
        out.write(b'{"step": 2, "ep')
    assert [p["step"] for p in read_points(path)] == [1]
    with path.open("ab") as out:
        out.write(b"\n")
    append_point(path, _point(3))
    with pytest.raises(ModelTrainerError) as caught:
        read_points(path)
    assert caught.value.code == "ARTIFACT_CORRUPT"
    assert caught.value.details["line"] == 2


def test_pages_walk_the_history() -> None:
    points = [_point(step) for step in range(1, 6)]
    first = page("r", points, 0, 2)
    assert ([p["step"] for p in first["points"]], first["next_offset"]) == ([1, 2], 2)
    last = page("r", points, 4, 2)
    assert ([p["step"] for p in last["points"]], last["next_offset"]) == ([5], None)
    assert last["total"] == 5 and last["run_id"] == "r"


def test_downsampling_averages_buckets_and_keeps_their_last_evaluation() -> None:
    points = [
        _point(step, loss=float(step), val_loss=10.0 + step if step % 3 == 0 else None)
        for step in range(1, 8)
    ]
    assert downsample(points, 10) == points
    sampled = downsample(points, 3)
    assert [p["step"] for p in sampled] == [3, 6, 7]
    assert [p["loss"] for p in sampled] == [2.0, 5.0, 7.0]
    assert [p["val_loss"] for p in sampled] == [13.0, 16.0, None]
    assert [p["elapsed_s"] for p in sampled] == [3.0, 6.0, 7.0]
