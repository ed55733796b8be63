"""Training checkpoints: tensors in safetensors, everything else in JSON, never pickle.

A checkpoint holds what an exact resume needs: model and optimizer tensors, the scheduler's
state, torch's RNG states, and the loop's position (step, epoch, batch index), plus the
sha256 of each of those files (`digests.json`), so a checkpoint damaged on disk is never loaded:
resume falls back to the one before it. Its `metrics.json` (storage/checkpoints.py) says what
the run measured there, which is what retention ranks by.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypedDict

import orjson
import torch
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from model_trainer.errors import ModelTrainerError
from model_trainer.storage.checkpoints import (
    DIGESTS_FILE,
    CheckpointMetrics,
    checkpoint_dirs,
    checkpoint_name,
    read_digests,
    retained,
    write_metrics,
)
from model_trainer.storage.digests import (
    digest_files,
    ordinary_permissions,
    verify_files,
)
from platform_core.json_types import (
    JSONObject,
    JSONValue,
    load_json_object,
    require_float,
    require_int,
    require_object,
)

logger = logging.getLogger(__name__)

MODEL_FILE = "model.safetensors"
TRAINING_FILE = "training.safetensors"
STATE_FILE = "state.json"
_FILES = (MODEL_FILE, TRAINING_FILE, STATE_FILE)


class CheckpointState(TypedDict):
    """Where the loop stood when the checkpoint was taken."""

    step: int
    epoch: int
    batch_index: int
    tokens_seen: int
    elapsed_s: float


class _CheckpointMeta(TypedDict):
    state: CheckpointState
    optimizer_groups: JSONValue
    scheduler: JSONObject


def _to_json(value: object) -> JSONValue:
    """Torch state dicts hold plain Python values besides tensors; keep them strictly JSON."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_to_json(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _to_json(item) for key, item in value.items()}
    raise ModelTrainerError(
        "MODEL_INCOMPATIBLE",
        f"cannot checkpoint a value of type {type(value).__name__}",
    )


def _split_optimizer(optimizer: Optimizer) -> tuple[dict[str, Tensor], JSONValue]:
    """Per-parameter state goes to safetensors; the hyperparameter groups go to JSON."""
    full = optimizer.state_dict()
    tensors: dict[str, Tensor] = {}
    for param_id, entries in full["state"].items():
        for key, value in entries.items():
            if not isinstance(value, Tensor):
                raise ModelTrainerError(
                    "MODEL_INCOMPATIBLE",
                    f"optimizer state {key!r} is a {type(value).__name__}, not a tensor",
                )
            tensors[f"optimizer.{param_id}.{key}"] = value.detach().contiguous()
    return tensors, _to_json(full["param_groups"])


def _optimizer_state(tensors: dict[str, Tensor], groups: JSONValue) -> dict[str, object]:
    state: dict[int, dict[str, Tensor]] = {}
    for name, tensor in tensors.items():
        _, param_id, key = name.split(".", 2)
        state.setdefault(int(param_id), {})[key] = tensor
    return {"state": state, "param_groups": groups}


def _rng_tensors() -> dict[str, Tensor]:
    tensors = {"rng.cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for index, rng in enumerate(torch.cuda.get_rng_state_all()):  # cuda-only
            tensors[f"rng.cuda.{index}"] = rng  # cuda-only
    return tensors


def _restore_rng(tensors: dict[str, Tensor]) -> None:
    torch.set_rng_state(tensors["rng.cpu"])
    cuda_states = [tensors[key] for key in sorted(tensors) if key.startswith("rng.cuda.")]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states)  # cuda-only


def save_checkpoint(
    checkpoint_dir: Path,
    *,
    model: nn.Module,
    optimizer: Optimizer,
    scheduler: LRScheduler,
    state: CheckpointState,
    metrics: CheckpointMetrics,
    keep_last: int,
    keep_best: int,
) -> Path:
    """Write atomically (a temp directory renamed into place), then retire what retention no
    longer keeps (storage.checkpoints.retained)."""
    final = checkpoint_dir / checkpoint_name(state["step"])
    tmp = checkpoint_dir / f".{final.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model(model, str(tmp / MODEL_FILE))
    opt_tensors, groups = _split_optimizer(optimizer)
    save_file({**opt_tensors, **_rng_tensors()}, str(tmp / TRAINING_FILE))
    sched: dict[str, object] = scheduler.state_dict()
    meta: _CheckpointMeta = {
        "state": state,
        "optimizer_groups": groups,
        "scheduler": {key: _to_json(value) for key, value in sched.items()},
    }
    (tmp / STATE_FILE).write_bytes(orjson.dumps(meta))
    (tmp / DIGESTS_FILE).write_bytes(orjson.dumps(digest_files(tmp, _FILES)))
    write_metrics(tmp, metrics)
    ordinary_permissions(tmp)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    existing = checkpoint_dirs(checkpoint_dir)
    keep = retained(existing, keep_last=keep_last, keep_best=keep_best)
    for old in existing:
        if old not in keep:
            shutil.rmtree(old)
    return final


def latest_checkpoint(checkpoint_dir: Path) -> Path | None:
    found = checkpoint_dirs(checkpoint_dir)
    return found[-1] if found else None


def verify_checkpoint(path: Path) -> None:
    """Refuse (ARTIFACT_CORRUPT) a checkpoint whose files differ from the digests saved with
    them; one without digests cannot be trusted either."""
    verify_files(path, read_digests(path))


def _read_meta(path: Path) -> _CheckpointMeta:
    raw = load_json_object((path / STATE_FILE).read_bytes())
    state = require_object(raw, "state")
    loop_state: CheckpointState = {
        "step": require_int(state, "step"),
        "epoch": require_int(state, "epoch"),
        "batch_index": require_int(state, "batch_index"),
        "tokens_seen": require_int(state, "tokens_seen"),
        "elapsed_s": require_float(state, "elapsed_s"),
    }
    return {
        "state": loop_state,
        "optimizer_groups": raw["optimizer_groups"],
        "scheduler": require_object(raw, "scheduler"),
    }


def load_checkpoint(
    path: Path, *, model: nn.Module, optimizer: Optimizer, scheduler: LRScheduler
) -> CheckpointState:
    """Restore model, optimizer, scheduler and RNG states in place; return the loop position.
    Its files are verified first, so a corrupt checkpoint changes nothing."""
    verify_checkpoint(path)
    meta = _read_meta(path)
    load_model(model, str(path / MODEL_FILE))
    tensors = load_file(str(path / TRAINING_FILE))
    opt_tensors = {k: v for k, v in tensors.items() if k.startswith("optimizer.")}
    optimizer.load_state_dict(_optimizer_state(opt_tensors, meta["optimizer_groups"]))
    scheduler.load_state_dict(meta["scheduler"])
    _restore_rng(tensors)
    return meta["state"]


def load_weights(model: nn.Module, path: Path) -> None:
    """Fill a model of the checkpoint's architecture with its weights, verified first."""
    verify_checkpoint(path)
    load_model(model, str(path / MODEL_FILE))


def resume_latest(checkpoint_dir: Path, restore: Callable[[Path], None]) -> Path | None:
    """Restore from the newest checkpoint that verifies; a corrupt or truncated one is logged
    and the one before it tried. None when there is none to resume from (start afresh)."""
    for path in reversed(checkpoint_dirs(checkpoint_dir)):
        try:
            restore(path)
        except ModelTrainerError as error:
            if error.code != "ARTIFACT_CORRUPT":
                raise
            logger.warning("not resuming from %s: %s", path.name, error.message)
            continue
        logger.info("resuming from checkpoint %s", path.name)
        return path
    return None
