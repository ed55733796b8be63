"""Hyperparameter studies: what a study asks for, and what it and its trials record.

A study tunes some fields of one train request (`base`) over a search space. Each trial is an
ordinary train job with the base request and the trial's values; Optuna (its samplers, pruners
and a journal in Redis) chooses the values and decides what to prune.
"""

from __future__ import annotations

from typing import Literal

from typing_extensions import TypedDict

from platform_core.json_types import JSONObject

SamplerKind = Literal["tpe", "random", "grid"]
PrunerKind = Literal["median", "none"]
ParamKind = Literal["int", "float", "categorical"]
StudyStatus = Literal["running", "completed", "cancelled", "failed"]
# Why a study ended: its trials are done, its time ran out, or a trial could not be submitted.
StudyEnd = Literal["n_trials", "timeout", "cancelled", "refused"]
# waiting: asked for, not yet submitted (the user's queue was full); the others follow its job.
TrialState = Literal["waiting", "running", "complete", "pruned", "failed", "cancelled"]

SAMPLERS: tuple[SamplerKind, ...] = ("tpe", "random", "grid")
PRUNERS: tuple[PrunerKind, ...] = ("median", "none")
PARAM_KINDS: tuple[ParamKind, ...] = ("int", "float", "categorical")
STUDY_STATUSES: tuple[StudyStatus, ...] = ("running", "completed", "cancelled", "failed")
STUDY_ENDS: tuple[StudyEnd, ...] = ("n_trials", "timeout", "cancelled", "refused")
TRIAL_STATES: tuple[TrialState, ...] = (
    "waiting",
    "running",
    "complete",
    "pruned",
    "failed",
    "cancelled",
)
# Trials that count towards n_trials: they ran (or could not) and are over.
FINISHED_TRIALS: tuple[TrialState, ...] = ("complete", "pruned", "failed", "cancelled")

# The train request fields a study may tune, by the kinds of parameter that fit each.
INT_FIELDS = (
    "batch_size",
    "max_seq_len",
    "num_epochs",
    "max_steps",
    "warmup_steps",
    "grad_accum_steps",
    "seed",
)
FLOAT_FIELDS = (
    "learning_rate",
    "weight_decay",
    "beta2",
    "min_lr_ratio",
    "grad_clip",
    "time_budget_s",
)
CATEGORICAL_FIELDS = (*INT_FIELDS, *FLOAT_FIELDS, "model_size", "lr_schedule", "precision")

MAX_TRIALS = 1000
MAX_PARALLEL_TRIALS = 64
MAX_PARAMS = 16
MAX_CHOICES = 64
MAX_GRID_POINTS = 10_000
MAX_STUDY_TIMEOUT_S = 30 * 24 * 3600
MAX_STUDIES_PER_USER = 1000
MAX_STUDY_NAME_CHARS = 128

Choice = str | int | float | bool


class ParamSpec(TypedDict):
    """One tuned field: an int or float range (`log` samples its logarithm evenly; `step` a
    grid of it) or a list of choices. Fields a kind does not use are None."""

    name: str
    type: ParamKind
    low: float | None
    high: float | None
    step: float | None
    log: bool
    choices: list[Choice] | None


class StudySpec(TypedDict):
    """What a study was asked for; `base` is the train request every trial starts from."""

    name: str
    base: JSONObject
    search_space: list[ParamSpec]
    sampler: SamplerKind
    pruner: PrunerKind
    pruner_startup_trials: int
    pruner_warmup_steps: int
    n_trials: int
    parallelism: int
    timeout_s: int | None
    metric: Literal["val_loss"]
    seed: int


class StudyError(TypedDict):
    """Why a study failed."""

    code: str
    message: str


class StudyRecord(TypedDict):
    """A study and its owner: trials are submitted as the owner, with the key that created
    the study (revoking it ends the study at its next trial)."""

    study_id: str
    user_id: int
    user: str
    key_id: str
    admin: bool
    spec: StudySpec
    status: StudyStatus
    ended_by: StudyEnd | None
    error: StudyError | None
    created_at: str
    finished_at: str | None
    # No trial is asked for after this moment (created_at + timeout_s), if the study has one.
    deadline: float | None


class TrialRecord(TypedDict):
    """One trial: its Optuna number, the job and run it trains, and how it ended."""

    number: int
    job_id: str
    run_id: str
    params: JSONObject
    state: TrialState
    value: float | None
    error: StudyError | None
    created_at: str
    finished_at: str | None


def grid_values(param: ParamSpec) -> list[Choice] | None:
    """The values a grid search tries for a parameter: its choices, or every int of its range
    (by its step); None for a float range, which has no finite grid."""
    if param["choices"] is not None:
        return param["choices"]
    low, high = param["low"], param["high"]
    if param["type"] != "int" or low is None or high is None:
        return None
    step = int(param["step"] or 1)
    return list(range(int(low), int(high) + 1, step))


class TrialRef(TypedDict):
    """What a trial's train job carries, to report val losses and learn whether to stop."""

    study_id: str
    number: int
