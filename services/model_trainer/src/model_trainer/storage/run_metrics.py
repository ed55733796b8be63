"""A run's step-by-step metrics: one JSON line per report in `metrics.jsonl` in its directory.

Written by the training loop as it goes (an append per log interval, no Redis involved), so the
history is there during the run, after it, after any restart, and beside the weights it
describes. A resumed run repeats steps its last attempt had already reported past its
checkpoint; readers keep the last line of each step, which is the resumed run's.
"""

from __future__ import annotations

import math
from pathlib import Path

import orjson
from typing_extensions import TypedDict

from model_trainer.errors import ModelTrainerError
from platform_core.json_types import (
    PayloadError,
    load_json_object,
    optional_float,
    require_float,
    require_int,
)

METRICS_FILE = "metrics.jsonl"


class MetricPoint(TypedDict):
    """One report: training figures at a log interval, with val_loss when it was evaluated."""

    step: int
    epoch: int
    loss: float
    val_loss: float | None
    learning_rate: float
    grad_norm: float
    tokens_per_second: float
    elapsed_s: float


class MetricsPage(TypedDict):
    """A page of a run's metrics history, oldest first."""

    run_id: str
    total: int
    points: list[MetricPoint]
    next_offset: int | None


def append_point(path: Path, point: MetricPoint) -> None:
    with path.open("ab") as out:
        out.write(orjson.dumps(point) + b"\n")


def read_points(path: Path) -> list[MetricPoint]:
    """The history in step order, one point per step; a torn last line (the writer died
    mid-write) is skipped, any other damage is ARTIFACT_CORRUPT."""
    if not path.is_file():
        return []
    lines = path.read_bytes().split(b"\n")
    by_step: dict[int, MetricPoint] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            point = _decode(line)
        except PayloadError as exc:
            if number == len(lines):
                continue
            raise ModelTrainerError(
                "ARTIFACT_CORRUPT",
                f"{path.name} line {number} is not a metrics point: {exc}",
                details={"path": str(path), "line": number},
            ) from exc
        by_step[point["step"]] = point
    return [by_step[step] for step in sorted(by_step)]


def _decode(line: bytes) -> MetricPoint:
    raw = load_json_object(line)
    return {
        "step": require_int(raw, "step"),
        "epoch": require_int(raw, "epoch"),
        "loss": require_float(raw, "loss"),
        "val_loss": optional_float(raw, "val_loss"),
        "learning_rate": require_float(raw, "learning_rate"),
        "grad_norm": require_float(raw, "grad_norm"),
        "tokens_per_second": require_float(raw, "tokens_per_second"),
        "elapsed_s": require_float(raw, "elapsed_s"),
    }


def page(run_id: str, points: list[MetricPoint], offset: int, limit: int) -> MetricsPage:
    chosen = points[offset : offset + limit]
    following = offset + len(chosen)
    return {
        "run_id": run_id,
        "total": len(points),
        "points": chosen,
        "next_offset": following if following < len(points) else None,
    }


def downsample(points: list[MetricPoint], count: int) -> list[MetricPoint]:
    """At most `count` points for a chart: consecutive points averaged in equal buckets, so a
    spike still moves its bucket's mean instead of falling between samples. Each bucket keeps
    its last step and epoch, and its last evaluation's val_loss."""
    if len(points) <= count:
        return points
    size = math.ceil(len(points) / count)
    return [_mean(points[start : start + size]) for start in range(0, len(points), size)]


def _mean(bucket: list[MetricPoint]) -> MetricPoint:
    evaluated = [p["val_loss"] for p in bucket if p["val_loss"] is not None]
    last = bucket[-1]
    n = len(bucket)
    return {
        "step": last["step"],
        "epoch": last["epoch"],
        "loss": sum(p["loss"] for p in bucket) / n,
        "val_loss": evaluated[-1] if evaluated else None,
        "learning_rate": last["learning_rate"],
        "grad_norm": sum(p["grad_norm"] for p in bucket) / n,
        "tokens_per_second": sum(p["tokens_per_second"] for p in bucket) / n,
        "elapsed_s": last["elapsed_s"],
    }
