"""What a model version records about where it came from, copied from its run at registration.

A version points at a finished run (its final model) or at one of the run's checkpoints
(`runs/{run_id}/checkpoints/step_{step:09d}/`, whose `metrics.json` the trainer writes). The
provenance is copied rather than referenced, so a version still says what it was after the run's
checkpoints are pruned. Everything read from disk is decoded field by field; a run whose manifest
or checkpoint metrics do not decode is the run's fault (MODEL_LOAD_FAILED), a step without a
checkpoint directory is not found.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeAlias

from typing_extensions import TypedDict

from model_trainer.contracts.model import (
    MODEL_FAMILIES,
    STOP_REASONS,
    ModelFamily,
    StopReason,
    TrainOutcome,
)
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.artifacts import fetch
from model_trainer.storage.checkpoints import (
    CHECKPOINTS_DIR,
    METRICS_FILE,
    CheckpointMetrics,
    checkpoint_name,
)
from model_trainer.storage.checkpoints import decode_metrics as decode_checkpoint
from model_trainer.storage.runs import run_dir, unreadable_manifest
from platform_core.json_types import (
    JSONObject,
    PayloadError,
    load_json_object,
    optional_float,
    optional_int,
    optional_str,
    require_float,
    require_int,
    require_literal,
    require_object,
    require_str,
)

# The final model's metrics are its run's TrainOutcome; a checkpoint's are its metrics.json.
VersionMetrics: TypeAlias = TrainOutcome | CheckpointMetrics


class VersionSource(TypedDict):
    """The run (and checkpoint) a version points at, with what trained it."""

    run_id: str
    step: int | None
    corpus_sha256: str
    tokenizer_id: str
    model_family: ModelFamily
    model_size: str
    # The run's full train config as its manifest records it; kept whole (as JSON) so options
    # added to the train config later are recorded without a change here.
    config: JSONObject
    metrics: VersionMetrics
    git_commit: str | None
    library_versions: dict[str, str]


def checkpoint_dir(settings: Settings, run_id: str, step: int) -> Path:
    return run_dir(settings, run_id) / CHECKPOINTS_DIR / checkpoint_name(step)


def decode_train_outcome(obj: JSONObject) -> TrainOutcome:
    return {
        "loss": require_float(obj, "loss"),
        "perplexity": require_float(obj, "perplexity"),
        "val_loss": optional_float(obj, "val_loss"),
        "val_perplexity": optional_float(obj, "val_perplexity"),
        "steps": require_int(obj, "steps"),
        "epochs_completed": require_int(obj, "epochs_completed"),
        "tokens_seen": require_int(obj, "tokens_seen"),
        "tokens_per_second": require_float(obj, "tokens_per_second"),
        "elapsed_s": require_float(obj, "elapsed_s"),
        "resumed_from_step": optional_int(obj, "resumed_from_step"),
        "out_dir": require_str(obj, "out_dir"),
        # Runs trained before these fields existed ran their planned length.
        "stop_reason": _stop_reason(obj),
        "best_val_loss": optional_float(obj, "best_val_loss"),
        "best_step": optional_int(obj, "best_step"),
    }


def _stop_reason(obj: JSONObject) -> StopReason:
    if "stop_reason" not in obj:
        return "completed"
    return require_literal(obj, "stop_reason", STOP_REASONS)


def decode_metrics(obj: JSONObject, step: int | None) -> VersionMetrics:
    """A final model's metrics (no step) or a checkpoint's."""
    return decode_train_outcome(obj) if step is None else decode_checkpoint(obj)


def decode_string_map(obj: JSONObject, field: str) -> dict[str, str]:
    mapping = require_object(obj, field)
    return {name: require_str(mapping, name) for name in mapping}


def read_checkpoint_metrics(settings: Settings, run_id: str, step: int) -> CheckpointMetrics:
    directory = checkpoint_dir(settings, run_id, step)
    fetch(settings, directory / METRICS_FILE)
    if not directory.is_dir():
        raise ModelTrainerError(
            "MODEL_NOT_FOUND",
            f"run {run_id} has no checkpoint at step {step}",
            details={"field": "step", "run_id": run_id, "step": step},
        )
    path = directory / METRICS_FILE
    try:
        return decode_checkpoint(load_json_object(path.read_bytes()))
    except (OSError, PayloadError) as exc:
        raise ModelTrainerError(
            "MODEL_LOAD_FAILED",
            f"checkpoint {step} of run {run_id} has no readable {METRICS_FILE}",
            details={"run_id": run_id, "step": step},
        ) from exc


def decode_source(obj: JSONObject, *, run_id: str, step: int | None) -> VersionSource:
    """The provenance fields of a run's manifest, or of a stored version (the same names)."""
    return {
        "run_id": run_id,
        "step": step,
        "corpus_sha256": require_str(obj, "corpus_sha256"),
        "tokenizer_id": require_str(obj, "tokenizer_id"),
        "model_family": require_literal(obj, "model_family", MODEL_FAMILIES),
        "model_size": require_str(obj, "model_size"),
        "config": require_object(obj, "config"),
        "metrics": decode_metrics(require_object(obj, "metrics"), step),
        "git_commit": optional_str(obj, "git_commit"),
        "library_versions": decode_string_map(obj, "library_versions"),
    }


def version_source(
    settings: Settings, manifest: JSONObject, run_id: str, step: int | None
) -> VersionSource:
    """The provenance of a run's final model (step None) or of one of its checkpoints."""
    with unreadable_manifest(run_id):
        source = decode_source(manifest, run_id=run_id, step=None)
    if step is None:
        return source
    return {**source, "step": step, "metrics": read_checkpoint_metrics(settings, run_id, step)}
