"""The train config, declared once: every option, its default and its valid range.

Adding an option touches three places: this module (field, default, range), the HTTP request
model (`api/schemas.TrainJobRequest`, whose defaults read `TRAIN_DEFAULTS` and, for the few
options whose default depends on the model family, `FAMILY_TRAIN_DEFAULTS`), and the code that
uses it. The CLI's `local-train` and `submit train` take any option as `key=value`.

The TypedDicts come from typing_extensions so pydantic can validate them at the HTTP boundary
on Python 3.11 (it refuses `typing.TypedDict` there).
"""

from __future__ import annotations

import math
from typing import Literal

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
    # Retention (seed 000): the newest `keep_checkpoints` plus the `keep_best_checkpoints`
    # with the lowest validation loss (training loss without a split), so a run always has
    # its latest and its best, and never more than the sum on disk.
    keep_checkpoints: int
    keep_best_checkpoints: int
    # Stop once validation loss has not improved by more than min_delta for this many
    # evaluations in a row (None: never); needs a validation split.
    early_stopping_patience: int | None
    early_stopping_min_delta: float
    # Health alerts (None switches one off): gradient norm above max or below min, and
    # validation loss rising more than this fraction above its best so far.
    grad_norm_alert_max: float | None
    grad_norm_alert_min: float | None
    val_loss_spike_ratio: float | None
    # torch.compile the model's forward; honoured on CUDA only (on CPU it costs ~30 s and
    # gains nothing at these sizes).
    compile: bool
    # A local Hugging Face checkpoint directory (under DATA_ROOT or ARTIFACTS_ROOT) to
    # fine-tune instead of training from scratch; gpt2 only.
    init_from: str | None
    # Processes training together with DistributedDataParallel (training/distributed.py); each
    # takes an equal share of every batch, so batch_size stays the global batch.
    num_processes: int


class ParentRef(TypedDict):
    """The run (and checkpoint step; None for its final model) a run continues from."""

    run_id: str
    step: int | None


class ModelTrainConfig(TrainOptions):
    """Everything a train job asks for: what to train, on what, and how."""

    model_family: ModelFamily
    model_size: str
    corpus_path: str
    # Provenance of a continued run: its starting weights are this run's (same family, size
    # and tokenizer); the optimizer and schedule start afresh from this config.
    parent: ParentRef | None


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
    "keep_best_checkpoints": 1,
    "early_stopping_patience": None,
    "early_stopping_min_delta": 0.0,
    "grad_norm_alert_max": 1000.0,
    "grad_norm_alert_min": 1e-8,
    "val_loss_spike_ratio": 0.2,
    "compile": False,
    "init_from": None,
    "num_processes": 1,
}


FamilyOption = Literal[
    "max_seq_len",
    "batch_size",
    "learning_rate",
    "beta2",
    "warmup_steps",
    "min_lr_ratio",
    "precision",
]


class FamilyTrainDefaults(TypedDict):
    """The options whose default depends on the model family: a family's recipe."""

    max_seq_len: int
    batch_size: int
    learning_rate: float
    beta2: float
    warmup_steps: int
    min_lr_ratio: float
    precision: Precision


# gpt2 keeps the shared defaults. char_lstm's recipe was chosen by measurement (`small` on
# tinyshakespeare, bench/char_lstm_learning.py; README "char_lstm's default recipe"): windows of
# 512 beat 128 and 256 at a fixed token count (the state carried through a longer window learns
# longer context, and fewer predictions start from an empty state). bf16 (oneDNN's native bf16
# LSTM on AVX-512 CPUs) gives 1.3x the tokens/s at batch 8 and 1.7x at batch 16, where batch 16
# is also ~1.25x batch 8's tokens/s: in 180 s on 2 cores, 16 x 512 at lr 2e-2 reached 1.502
# against 1.508 for 8 x 512 at 1.6e-2 (1.512-1.520 in fp32); lr 3e-2 reached 1.506. Decaying
# to 0 rather than 0.1x then gave 1.497 at 2e-2 and 1.496 at 1.6e-2. The clipping at 1.0 is the
# shared one; beta2 0.99 helped a little at 32 x 128, and warmup 50 was as good as its
# alternatives there.
FAMILY_TRAIN_DEFAULTS: dict[ModelFamily, FamilyTrainDefaults] = {
    "char_lstm": {
        "max_seq_len": 512,
        "batch_size": 16,
        "learning_rate": 1.6e-2,
        "beta2": 0.99,
        "warmup_steps": 50,
        "min_lr_ratio": 0.0,
        "precision": "bf16",
    },
    "gpt2": {
        "max_seq_len": TRAIN_DEFAULTS["max_seq_len"],
        "batch_size": TRAIN_DEFAULTS["batch_size"],
        "learning_rate": TRAIN_DEFAULTS["learning_rate"],
        "beta2": TRAIN_DEFAULTS["beta2"],
        "warmup_steps": TRAIN_DEFAULTS["warmup_steps"],
        "min_lr_ratio": TRAIN_DEFAULTS["min_lr_ratio"],
        "precision": TRAIN_DEFAULTS["precision"],
    },
}


def train_defaults(family: ModelFamily) -> TrainOptions:
    """Every option's default for a family: the shared defaults with the family's recipe."""
    return {**TRAIN_DEFAULTS, **FAMILY_TRAIN_DEFAULTS[family]}


def make_train_config(
    *,
    model_family: str,
    model_size: str,
    corpus_path: str,
    options: TrainOptions = TRAIN_DEFAULTS,
    parent: ParentRef | None = None,
) -> ModelTrainConfig:
    """A validated config; callers override defaults with `{**TRAIN_DEFAULTS, "key": value}`."""
    cfg: ModelTrainConfig = {
        **options,
        "model_family": parse_model_family(model_family),
        "model_size": model_size,
        "corpus_path": corpus_path,
        "parent": parent,
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
    within("keep_best_checkpoints", cfg["keep_best_checkpoints"], 1, L.MAX_KEEP_CHECKPOINTS)
    validate_monitoring(cfg)
    validate_processes(cfg)


def validate_processes(cfg: TrainOptions) -> None:
    """Every process takes an equal share of each batch; a time budget is measured by each
    process's own clock, so it would end them at different steps."""
    processes = cfg["num_processes"]
    within("num_processes", processes, 1, L.MAX_PROCESSES)
    if processes == 1:
        return
    if cfg["batch_size"] % processes:
        raise invalid("batch_size", f"a multiple of num_processes ({processes})", cfg["batch_size"])
    if cfg["time_budget_s"] is not None:
        raise invalid("time_budget_s", "null when num_processes > 1", cfg["time_budget_s"])


def validate_monitoring(cfg: TrainOptions) -> None:
    """Early stopping watches validation loss, so it needs a split; alert bounds are ordered."""
    if cfg["early_stopping_patience"] is not None:
        within("early_stopping_patience", cfg["early_stopping_patience"], 1, L.MAX_PATIENCE)
        if cfg["val_fraction"] == 0.0:
            raise invalid(
                "early_stopping_patience",
                "null when val_fraction is 0 (it watches validation loss)",
                cfg["early_stopping_patience"],
            )
    delta = cfg["early_stopping_min_delta"]
    if not (math.isfinite(delta) and 0.0 <= delta <= L.MAX_MIN_DELTA):
        raise invalid("early_stopping_min_delta", f"in [0, {L.MAX_MIN_DELTA:g}]", delta)
    high, low = cfg["grad_norm_alert_max"], cfg["grad_norm_alert_min"]
    if high is not None:
        positive("grad_norm_alert_max", high, at_most=L.MAX_GRAD_NORM_ALERT)
    if low is not None:
        positive("grad_norm_alert_min", low, at_most=L.MAX_GRAD_NORM_ALERT)
    if high is not None and low is not None and low >= high:
        raise invalid("grad_norm_alert_min", f"below grad_norm_alert_max ({high:g})", low)
    if cfg["val_loss_spike_ratio"] is not None:
        positive("val_loss_spike_ratio", cfg["val_loss_spike_ratio"], at_most=L.MAX_SPIKE_RATIO)


def check_length(num_epochs: int, max_steps: int | None) -> None:
    """A run's length is whole epochs, or exactly `max_steps` steps (the corpus repeating as
    often as that takes); never both, so neither silently cuts the other short."""
    if max_steps is None:
        return
    within("max_steps", max_steps, 1, L.MAX_STEPS)
    if num_epochs != 1:
        raise invalid("num_epochs", "1 (its default) when max_steps is given", num_epochs)
