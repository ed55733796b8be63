"""Runs side by side: what their configs disagree on, and their best and final figures."""

from __future__ import annotations

import orjson
from typing_extensions import TypedDict

from model_trainer.storage.run_metrics import MetricPoint
from platform_core.json_types import (
    JSONObject,
    JSONValue,
    optional_float,
    require_float,
    require_int,
    require_object,
    require_str,
)


class FinalMetrics(TypedDict):
    """A run's figures at its end."""

    loss: float
    val_loss: float | None
    steps: int
    elapsed_s: float
    stop_reason: str


class BestMetrics(TypedDict):
    """The lowest losses the history recorded, and where."""

    loss: float | None
    loss_step: int | None
    val_loss: float | None
    val_loss_step: int | None


class ComparedRun(TypedDict):
    """One run in a comparison: what it is, its final and its best figures."""

    run_id: str
    model_family: str
    model_size: str
    final: FinalMetrics
    best: BestMetrics


class RunComparison(TypedDict):
    """Runs side by side, and the config keys whose values differ between them."""

    runs: list[ComparedRun]
    # Only the config keys whose values differ: key -> {run_id: value}.
    config_differences: dict[str, dict[str, JSONValue]]


def compared_run(manifest: JSONObject, history: list[MetricPoint]) -> ComparedRun:
    metrics = require_object(manifest, "metrics")
    stop_reason = metrics.get("stop_reason")
    return {
        "run_id": require_str(manifest, "run_id"),
        "model_family": require_str(manifest, "model_family"),
        "model_size": require_str(manifest, "model_size"),
        "final": {
            "loss": require_float(metrics, "loss"),
            "val_loss": optional_float(metrics, "val_loss"),
            "steps": require_int(metrics, "steps"),
            "elapsed_s": require_float(metrics, "elapsed_s"),
            "stop_reason": stop_reason if isinstance(stop_reason, str) else "completed",
        },
        "best": best_metrics(history),
    }


def best_metrics(history: list[MetricPoint]) -> BestMetrics:
    trained = min(history, key=lambda p: p["loss"], default=None)
    evaluated = [p for p in history if p["val_loss"] is not None]
    validated = min(evaluated, key=lambda p: p["val_loss"] or 0.0, default=None)
    return {
        "loss": None if trained is None else trained["loss"],
        "loss_step": None if trained is None else trained["step"],
        "val_loss": None if validated is None else validated["val_loss"],
        "val_loss_step": None if validated is None else validated["step"],
    }


def config_differences(configs: dict[str, JSONObject]) -> dict[str, dict[str, JSONValue]]:
    keys = sorted({key for config in configs.values() for key in config})
    differences: dict[str, dict[str, JSONValue]] = {}
    for key in keys:
        values = {run_id: config.get(key) for run_id, config in configs.items()}
        if len({_canonical(value) for value in values.values()}) > 1:
            differences[key] = values
    return differences


def _canonical(value: JSONValue) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
