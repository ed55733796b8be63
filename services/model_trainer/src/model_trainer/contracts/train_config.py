"""The train config, declared once: every option, its default and its valid range.

Adding an option touches three places: this module (field, default, range), the HTTP request
model (`api/schemas.TrainJobRequest`, whose defaults read `TRAIN_DEFAULTS`), and the code that
uses it. The CLI's `local-train` and `submit train` take any option as `key=value`.

The TypedDicts come from typing_extensions so pydantic can validate them at the HTTP boundary
on Python 3.11 (it refuses `typing.TypedDict` there).
"""

from __future__ import annotations

import math

from typing_extensions import TypedDict

from model_trainer.contracts import limits as L
from model_trainer.contracts.model import DeviceChoice, LRSchedule, ModelFamily, Precision
from model_trainer.contracts.validators import (
    fraction,
    invalid,
    parse_model_family,
    positive,
    within,
)


class TrainOptions(TypedDict):
    """What a training run can tune; each has a default in TRAIN_DEFAULTS."""

    max_seq_len: int
    num_epochs: int
    batch_size: int
    learning_rate: float
    seed: int
    device: DeviceChoice
    precision: Precision
    max_steps: int | None
    time_budget_s: float | None
    val_fraction: float
    grad_clip: float | None
    grad_accum_steps: int
    weight_decay: float
    beta2: float
    lr_schedule: LRSchedule
    warmup_steps: int
    min_lr_ratio: float
    log_every_steps: int
    eval_every_steps: int | None
    eval_max_batches: int
    checkpoint_every_steps: int | None
    keep_checkpoints: int
    # torch.compile the model's forward; honoured on CUDA only (on CPU it costs ~30 s and
    # gains nothing at these sizes).
    compile: bool
    # A local Hugging Face checkpoint directory (under DATA_ROOT or ARTIFACTS_ROOT) to
    # fine-tune instead of training from scratch; gpt2 only.
    init_from: str | None


class ModelTrainConfig(TrainOptions):
    """Everything a train job asks for: what to train, on what, and how."""

    model_family: ModelFamily
    model_size: str
    corpus_path: str


TRAIN_DEFAULTS: TrainOptions = {
    "max_seq_len": 128,
    "num_epochs": 1,
    "batch_size": 32,
    "learning_rate": 3e-3,
    "seed": 0,
    "device": "auto",
    "precision": "auto",
    "max_steps": None,
    "time_budget_s": None,
    "val_fraction": 0.1,
    "grad_clip": 1.0,
    "grad_accum_steps": 1,
    "weight_decay": 0.0,
    # AdamW's second-moment decay; nanoGPT's small-model recipe uses 0.99.
    "beta2": 0.999,
    "lr_schedule": "cosine",
    "warmup_steps": 0,
    "min_lr_ratio": 0.1,
    "log_every_steps": 10,
    "eval_every_steps": None,
    "eval_max_batches": 50,
    "checkpoint_every_steps": 200,
    "keep_checkpoints": 2,
    "compile": False,
    "init_from": None,
}


def make_train_config(
    *,
    model_family: str,
    model_size: str,
    corpus_path: str,
    options: TrainOptions = TRAIN_DEFAULTS,
) -> ModelTrainConfig:
    """A validated config; callers override defaults with `{**TRAIN_DEFAULTS, "key": value}`."""
    cfg: ModelTrainConfig = {
        **options,
        "model_family": parse_model_family(model_family),
        "model_size": model_size,
        "corpus_path": corpus_path,
    }
    validate_model_train_config(cfg)
    return cfg


def validate_model_train_config(cfg: ModelTrainConfig) -> None:
    """Reject any value the training loop could not honour."""
    parse_model_family(cfg["model_family"])
    within("max_seq_len", cfg["max_seq_len"], 1, L.MAX_SEQ_LEN)
    within("num_epochs", cfg["num_epochs"], 1, L.MAX_EPOCHS)
    within("batch_size", cfg["batch_size"], 1, L.MAX_BATCH_SIZE)
    positive("learning_rate", cfg["learning_rate"], at_most=L.MAX_LEARNING_RATE)
    within("seed", cfg["seed"], 0, L.MAX_SEED)
    check_length(cfg["num_epochs"], cfg["max_steps"])
    if cfg["time_budget_s"] is not None:
        positive("time_budget_s", cfg["time_budget_s"], at_most=L.MAX_TIME_BUDGET_S)
    fraction("val_fraction", cfg["val_fraction"], low_open=False, high_open=True)
    if cfg["grad_clip"] is not None:
        positive("grad_clip", cfg["grad_clip"], at_most=L.MAX_GRAD_CLIP)
    within("grad_accum_steps", cfg["grad_accum_steps"], 1, L.MAX_GRAD_ACCUM_STEPS)
    if not (
        math.isfinite(cfg["weight_decay"]) and 0.0 <= cfg["weight_decay"] <= L.MAX_WEIGHT_DECAY
    ):
        raise invalid("weight_decay", f"in [0, {L.MAX_WEIGHT_DECAY:g}]", cfg["weight_decay"])
    fraction("beta2", cfg["beta2"], low_open=False, high_open=True)
    within("warmup_steps", cfg["warmup_steps"], 0, L.MAX_STEPS)
    fraction("min_lr_ratio", cfg["min_lr_ratio"], low_open=False, high_open=False)
    within("log_every_steps", cfg["log_every_steps"], 1, L.MAX_STEPS)
    if cfg["eval_every_steps"] is not None:
        within("eval_every_steps", cfg["eval_every_steps"], 1, L.MAX_STEPS)
    within("eval_max_batches", cfg["eval_max_batches"], 1, L.MAX_EVAL_BATCHES)
    if cfg["checkpoint_every_steps"] is not None:
        within("checkpoint_every_steps", cfg["checkpoint_every_steps"], 1, L.MAX_STEPS)
    within("keep_checkpoints", cfg["keep_checkpoints"], 1, L.MAX_KEEP_CHECKPOINTS)


def check_length(num_epochs: int, max_steps: int | None) -> None:
    """A run's length is whole epochs, or exactly `max_steps` steps (the corpus repeating as
    often as that takes); never both, so neither silently cuts the other short."""
    if max_steps is None:
        return
    within("max_steps", max_steps, 1, L.MAX_STEPS)
    if num_epochs != 1:
        raise invalid("num_epochs", "1 (its default) when max_steps is given", num_epochs)
