"""Versioned training metrics events, so dashboards can chart a run without reading our store.

Decoders drop fields they do not know: a newer producer's additive field never breaks an older
subscriber, while a changed meaning gets a new version suffix. `ts` (when the event was
published, `event_time`) is such an additive field: every make_* sets it, and an event from a
publisher older than it decodes without it.
"""

from collections.abc import Callable
from typing import Literal, NotRequired, TypedDict, TypeGuard, TypeVar

from platform_core.event_time import check_event_time, event_time, received_time
from platform_core.json_types import (
    JSONObject,
    dump_json_object,
    load_json_object,
    optional_float,
    optional_int,
    optional_str,
    require_float,
    require_int,
    require_literal,
    require_str,
)

TrainerMetricsEventType = Literal[
    "trainer.metrics.config.v1",
    "trainer.metrics.progress.v1",
    "trainer.metrics.completed.v1",
    "trainer.metrics.alert.v1",
]


class TrainerConfigV1(TypedDict):
    """The model and resources a run starts with, published once at job start."""

    type: Literal["trainer.metrics.config.v1"]
    job_id: str
    user_id: int
    ts: NotRequired[str]
    model_family: str
    model_size: str
    total_epochs: int
    queue: str
    device: NotRequired[str]
    total_steps: NotRequired[int]
    cpu_cores: NotRequired[int]
    memory_mb: NotRequired[int]
    optimal_threads: NotRequired[int]
    batch_size: NotRequired[int]
    learning_rate: NotRequired[float]
    max_seq_len: NotRequired[int]
    num_params: NotRequired[int]


class TrainerProgressMetricsV1(TypedDict):
    """Loss and position at a log interval during training."""

    type: Literal["trainer.metrics.progress.v1"]
    job_id: str
    user_id: int
    ts: NotRequired[str]
    epoch: int
    total_epochs: int
    step: int
    loss: float
    total_steps: NotRequired[int]
    val_loss: NotRequired[float]
    learning_rate: NotRequired[float]
    tokens_per_second: NotRequired[float]
    grad_norm: NotRequired[float]


class TrainerCompletedMetricsV1(TypedDict):
    """Final quality figures and where the trained model was written."""

    type: Literal["trainer.metrics.completed.v1"]
    job_id: str
    user_id: int
    ts: NotRequired[str]
    loss: float
    perplexity: float
    artifact_path: str
    val_loss: NotRequired[float]
    val_perplexity: NotRequired[float]
    steps: NotRequired[int]
    elapsed_s: NotRequired[float]
    # completed | time_budget | early_stopping
    stop_reason: NotRequired[str]
    best_val_loss: NotRequired[float]
    best_step: NotRequired[int]


class TrainerAlertV1(TypedDict):
    """A run's health crossed a threshold: `kind` is exploding_gradients, vanishing_gradients
    or val_loss_spike; `value` is what was measured at `step`, `threshold` what it crossed."""

    type: Literal["trainer.metrics.alert.v1"]
    job_id: str
    user_id: int
    ts: NotRequired[str]
    kind: str
    step: int
    value: float
    threshold: float
    message: str


TrainerMetricsEventV1 = (
    TrainerConfigV1 | TrainerProgressMetricsV1 | TrainerCompletedMetricsV1 | TrainerAlertV1
)
_EventT = TypeVar(
    "_EventT", TrainerConfigV1, TrainerProgressMetricsV1, TrainerCompletedMetricsV1, TrainerAlertV1
)


def _stamped(event: _EventT, ts: str | None) -> _EventT:
    """Every event says when it was published: now, unless the caller names the time."""
    event["ts"] = event_time() if ts is None else check_event_time(ts)
    return event


def _as_received(event: _EventT, obj: JSONObject) -> _EventT:
    """Decoders build through make_*, which stamps now: a decoded event keeps its publisher's
    `ts` instead, and one from a publisher older than `ts` stays without (never the reader's
    clock)."""
    ts = received_time(obj)
    if ts is None:
        del event["ts"]
    else:
        event["ts"] = ts
    return event


def make_config_event(
    *,
    job_id: str,
    user_id: int,
    model_family: str,
    model_size: str,
    total_epochs: int,
    queue: str,
    device: str | None = None,
    total_steps: int | None = None,
    cpu_cores: int | None = None,
    memory_mb: int | None = None,
    optimal_threads: int | None = None,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    max_seq_len: int | None = None,
    num_params: int | None = None,
    ts: str | None = None,
) -> TrainerConfigV1:
    """Builds the config event; a None optional stays out of the dict rather than as null
    (except `ts`: None means now)."""
    event: TrainerConfigV1 = {
        "type": "trainer.metrics.config.v1",
        "job_id": job_id,
        "user_id": user_id,
        "model_family": model_family,
        "model_size": model_size,
        "total_epochs": total_epochs,
        "queue": queue,
    }
    if device is not None:
        event["device"] = device
    if total_steps is not None:
        event["total_steps"] = total_steps
    if cpu_cores is not None:
        event["cpu_cores"] = cpu_cores
    if memory_mb is not None:
        event["memory_mb"] = memory_mb
    if optimal_threads is not None:
        event["optimal_threads"] = optimal_threads
    if batch_size is not None:
        event["batch_size"] = batch_size
    if learning_rate is not None:
        event["learning_rate"] = float(learning_rate)
    if max_seq_len is not None:
        event["max_seq_len"] = max_seq_len
    if num_params is not None:
        event["num_params"] = num_params
    return _stamped(event, ts)


def make_progress_metrics_event(
    *,
    job_id: str,
    user_id: int,
    epoch: int,
    total_epochs: int,
    step: int,
    loss: float,
    total_steps: int | None = None,
    val_loss: float | None = None,
    learning_rate: float | None = None,
    tokens_per_second: float | None = None,
    grad_norm: float | None = None,
    ts: str | None = None,
) -> TrainerProgressMetricsV1:
    """Builds a progress metrics event; a None optional stays out of the dict (`ts`: now)."""
    event: TrainerProgressMetricsV1 = {
        "type": "trainer.metrics.progress.v1",
        "job_id": job_id,
        "user_id": user_id,
        "epoch": epoch,
        "total_epochs": total_epochs,
        "step": step,
        "loss": float(loss),
    }
    if total_steps is not None:
        event["total_steps"] = total_steps
    if val_loss is not None:
        event["val_loss"] = float(val_loss)
    if learning_rate is not None:
        event["learning_rate"] = float(learning_rate)
    if tokens_per_second is not None:
        event["tokens_per_second"] = float(tokens_per_second)
    if grad_norm is not None:
        event["grad_norm"] = float(grad_norm)
    return _stamped(event, ts)


def make_completed_metrics_event(
    *,
    job_id: str,
    user_id: int,
    loss: float,
    perplexity: float,
    artifact_path: str,
    val_loss: float | None = None,
    val_perplexity: float | None = None,
    steps: int | None = None,
    elapsed_s: float | None = None,
    stop_reason: str | None = None,
    best_val_loss: float | None = None,
    best_step: int | None = None,
    ts: str | None = None,
) -> TrainerCompletedMetricsV1:
    """Builds the final metrics event; a None optional stays out of the dict (`ts`: now)."""
    event: TrainerCompletedMetricsV1 = {
        "type": "trainer.metrics.completed.v1",
        "job_id": job_id,
        "user_id": user_id,
        "loss": float(loss),
        "perplexity": float(perplexity),
        "artifact_path": artifact_path,
    }
    if val_loss is not None:
        event["val_loss"] = float(val_loss)
    if val_perplexity is not None:
        event["val_perplexity"] = float(val_perplexity)
    if steps is not None:
        event["steps"] = steps
    if elapsed_s is not None:
        event["elapsed_s"] = float(elapsed_s)
    if stop_reason is not None:
        event["stop_reason"] = stop_reason
    if best_val_loss is not None:
        event["best_val_loss"] = float(best_val_loss)
    if best_step is not None:
        event["best_step"] = best_step
    return _stamped(event, ts)


def make_alert_event(
    *,
    job_id: str,
    user_id: int,
    kind: str,
    step: int,
    value: float,
    threshold: float,
    message: str,
    ts: str | None = None,
) -> TrainerAlertV1:
    """Builds an alert event."""
    event: TrainerAlertV1 = {
        "type": "trainer.metrics.alert.v1",
        "job_id": job_id,
        "user_id": user_id,
        "kind": kind,
        "step": step,
        "value": float(value),
        "threshold": float(threshold),
        "message": message,
    }
    return _stamped(event, ts)


def _decode_config(obj: JSONObject) -> TrainerConfigV1:
    return _as_received(
        make_config_event(
            job_id=require_str(obj, "job_id"),
            user_id=require_int(obj, "user_id"),
            model_family=require_str(obj, "model_family"),
            model_size=require_str(obj, "model_size"),
            total_epochs=require_int(obj, "total_epochs"),
            queue=require_str(obj, "queue"),
            device=optional_str(obj, "device"),
            total_steps=optional_int(obj, "total_steps"),
            cpu_cores=optional_int(obj, "cpu_cores"),
            memory_mb=optional_int(obj, "memory_mb"),
            optimal_threads=optional_int(obj, "optimal_threads"),
            batch_size=optional_int(obj, "batch_size"),
            learning_rate=optional_float(obj, "learning_rate"),
            max_seq_len=optional_int(obj, "max_seq_len"),
            num_params=optional_int(obj, "num_params"),
        ),
        obj,
    )


def _decode_progress(obj: JSONObject) -> TrainerProgressMetricsV1:
    return _as_received(
        make_progress_metrics_event(
            job_id=require_str(obj, "job_id"),
            user_id=require_int(obj, "user_id"),
            epoch=require_int(obj, "epoch"),
            total_epochs=require_int(obj, "total_epochs"),
            step=require_int(obj, "step"),
            loss=require_float(obj, "loss"),
            total_steps=optional_int(obj, "total_steps"),
            val_loss=optional_float(obj, "val_loss"),
            learning_rate=optional_float(obj, "learning_rate"),
            tokens_per_second=optional_float(obj, "tokens_per_second"),
            grad_norm=optional_float(obj, "grad_norm"),
        ),
        obj,
    )


def _decode_completed(obj: JSONObject) -> TrainerCompletedMetricsV1:
    return _as_received(
        make_completed_metrics_event(
            job_id=require_str(obj, "job_id"),
            user_id=require_int(obj, "user_id"),
            loss=require_float(obj, "loss"),
            perplexity=require_float(obj, "perplexity"),
            artifact_path=require_str(obj, "artifact_path"),
            val_loss=optional_float(obj, "val_loss"),
            val_perplexity=optional_float(obj, "val_perplexity"),
            steps=optional_int(obj, "steps"),
            elapsed_s=optional_float(obj, "elapsed_s"),
            stop_reason=optional_str(obj, "stop_reason"),
            best_val_loss=optional_float(obj, "best_val_loss"),
            best_step=optional_int(obj, "best_step"),
        ),
        obj,
    )


def _decode_alert(obj: JSONObject) -> TrainerAlertV1:
    return _as_received(
        make_alert_event(
            job_id=require_str(obj, "job_id"),
            user_id=require_int(obj, "user_id"),
            kind=require_str(obj, "kind"),
            step=require_int(obj, "step"),
            value=require_float(obj, "value"),
            threshold=require_float(obj, "threshold"),
            message=require_str(obj, "message"),
        ),
        obj,
    )


_DECODERS: dict[TrainerMetricsEventType, Callable[[JSONObject], TrainerMetricsEventV1]] = {
    "trainer.metrics.config.v1": _decode_config,
    "trainer.metrics.progress.v1": _decode_progress,
    "trainer.metrics.completed.v1": _decode_completed,
    "trainer.metrics.alert.v1": _decode_alert,
}
TRAINER_METRICS_EVENT_TYPES: tuple[TrainerMetricsEventType, ...] = tuple(_DECODERS)


def encode_trainer_metrics_event(event: TrainerMetricsEventV1) -> str:
    """Serialises a metrics event for pub/sub and the per-job stream."""
    return dump_json_object(event)


def decode_trainer_metrics_event(payload: str | bytes) -> TrainerMetricsEventV1:
    """Validates every known field of a received event and drops the unknown ones."""
    obj = load_json_object(payload)
    event_type = require_literal(obj, "type", TRAINER_METRICS_EVENT_TYPES)
    return _DECODERS[event_type](obj)


def is_config(event: TrainerMetricsEventV1) -> TypeGuard[TrainerConfigV1]:
    """Lets a subscriber read config fields with their types checked."""
    return event["type"] == "trainer.metrics.config.v1"


def is_progress_metrics(event: TrainerMetricsEventV1) -> TypeGuard[TrainerProgressMetricsV1]:
    """Lets a subscriber read progress metrics with their types checked."""
    return event["type"] == "trainer.metrics.progress.v1"


def is_completed_metrics(event: TrainerMetricsEventV1) -> TypeGuard[TrainerCompletedMetricsV1]:
    """Lets a subscriber read final metrics with their types checked."""
    return event["type"] == "trainer.metrics.completed.v1"


def is_alert(event: TrainerMetricsEventV1) -> TypeGuard[TrainerAlertV1]:
    """Lets a subscriber read an alert's fields with their types checked."""
    return event["type"] == "trainer.metrics.alert.v1"
