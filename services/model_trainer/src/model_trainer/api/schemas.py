"""Request bodies: pydantic models live here, at the HTTP boundary, and nowhere else.

Responses need no mirror here: their models are the TypedDicts the routes return (job records,
run summaries, the error body), which pydantic reads as they are.

Requests are strict (no "3" for 3, no true for 1, no NaN) and refuse unknown fields, so a typo
is an error instead of a silently ignored setting. Train defaults are read from the contract's
TRAIN_DEFAULTS; the others equal the `make_*_config` builders' (a unit test keeps them equal).
Every number carries its range as a field constraint (from contracts/limits.py, so OpenAPI shows
it); the validators check the same ranges again for configs built outside HTTP.

Pydantic dataclasses rather than BaseModel: mypy types their generated `__init__` from the
fields, while BaseModel's catch-all `**data` constructor trips mypy's disallow_any_explicit.
Strictness is per field (Strict* types) because a strict dataclass refuses a JSON object.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Literal

from pydantic import (
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
)
from pydantic.dataclasses import dataclass

from model_trainer.contracts import limits as L
from model_trainer.contracts import studies as S
from model_trainer.contracts.jobs import JobType, Priority
from model_trainer.contracts.model import (
    DetailLevel,
    DeviceChoice,
    EvalSplit,
    LRSchedule,
    Precision,
)
from model_trainer.contracts.tokenizer import (
    DEFAULT_BPE_VOCAB_SIZE,
    MAX_BPE_VOCAB_SIZE,
    MAX_VOCAB_SIZE,
    MIN_BPE_VOCAB_SIZE,
    MIN_CHAR_VOCAB_SIZE,
    TokenizerKind,
)
from model_trainer.contracts.train_config import TRAIN_DEFAULTS, TrainOptions
from model_trainer.errors import ModelTrainerError
from platform_core.json_types import JSONValue

_REQUEST = ConfigDict(extra="forbid", allow_inf_nan=False)
_D = TRAIN_DEFAULTS

_CORPUS_ID = "sha256 of an uploaded corpus (`POST /v1/corpora`); give this or corpus_path"
_CORPUS_PATH = "a text file under DATA_ROOT (relative paths are relative to it)"
_TIMEOUT_S = (
    "wall-clock limit in seconds; at most the server's limit for the job type "
    "(JOB_TIMEOUT_S_<TYPE>), which is also the default"
)
_NUM_EPOCHS = "passes over the corpus; leave it at 1 when max_steps is given"
_MAX_STEPS = (
    "optimizer steps to run, repeating the corpus as often as that takes; "
    "when given, num_epochs must stay 1"
)
_PRIORITY = (
    "workers take every high job of a queue before any normal one, and every normal one "
    "before any low one; per-user limits count all three alike"
)
_TEXT = "inline text, at most MAX_TEXT_BYTES (settings) in UTF-8"
_STEP = (
    "a checkpoint of the run (`GET /v1/runs/{run_id}/checkpoints`) to use instead of its "
    "final model"
)
_RUN_ID = "a finished run of yours; give this or model"
_MODEL_REF = (
    "a registered model version instead of run_id: `name@alias` or `name/version` "
    "(`/v1/models`); its run (and checkpoint) is used"
)
_TOKENIZER_ID = (
    "a stored tokenizer (`POST /v1/jobs/tokenizer`); default: a character tokenizer of the corpus"
)


@dataclass(frozen=True, config=_REQUEST)
class TrainJobRequest:
    """`POST /v1/jobs/train`: train a model from scratch on one corpus.

    The tunables are `TrainOptions` (contracts/train_config.py), with its defaults.
    """

    model_family: StrictStr = Field(max_length=32)
    model_size: StrictStr = Field(max_length=32)
    corpus_id: StrictStr | None = Field(default=None, max_length=64, description=_CORPUS_ID)
    corpus_path: StrictStr | None = Field(
        default=None, max_length=L.MAX_PATH_CHARS, description=_CORPUS_PATH
    )
    run_id: StrictStr | None = Field(
        default=None, max_length=L.MAX_ID_CHARS, description="defaults to run-{job_id}"
    )
    tokenizer_id: StrictStr | None = Field(
        default=None, max_length=L.MAX_ID_CHARS, description=_TOKENIZER_ID
    )
    max_seq_len: StrictInt = Field(
        default=_D["max_seq_len"],
        ge=1,
        le=L.MAX_SEQ_LEN,
        description="tokens per window; gpt2 sizes take at most their context "
        "(tiny 128, nano 256, small and medium 1024)",
    )
    num_epochs: StrictInt = Field(
        default=_D["num_epochs"], ge=1, le=L.MAX_EPOCHS, description=_NUM_EPOCHS
    )
    batch_size: StrictInt = Field(default=_D["batch_size"], ge=1, le=L.MAX_BATCH_SIZE)
    learning_rate: StrictFloat = Field(default=_D["learning_rate"], gt=0.0, le=L.MAX_LEARNING_RATE)
    seed: StrictInt = Field(default=_D["seed"], ge=0, le=L.MAX_SEED)
    device: DeviceChoice = _D["device"]
    precision: Precision = _D["precision"]
    max_steps: StrictInt | None = Field(
        default=_D["max_steps"], ge=1, le=L.MAX_STEPS, description=_MAX_STEPS
    )
    time_budget_s: StrictFloat | StrictInt | None = Field(
        default=_D["time_budget_s"], gt=0, le=L.MAX_TIME_BUDGET_S
    )
    compile: StrictBool = _D["compile"]
    init_from: StrictStr | None = Field(
        default=_D["init_from"],
        max_length=L.MAX_PATH_CHARS,
        description="gpt2 only: fine-tune from a Hugging Face checkpoint directory under "
        "DATA_ROOT or one of the caller's runs (needs the checkpoint's tokenizer_id)",
    )
    val_fraction: StrictFloat = Field(default=_D["val_fraction"], ge=0.0, lt=1.0)
    grad_clip: StrictFloat | None = Field(default=_D["grad_clip"], gt=0.0, le=L.MAX_GRAD_CLIP)
    grad_accum_steps: StrictInt = Field(
        default=_D["grad_accum_steps"], ge=1, le=L.MAX_GRAD_ACCUM_STEPS
    )
    weight_decay: StrictFloat = Field(default=_D["weight_decay"], ge=0.0, le=L.MAX_WEIGHT_DECAY)
    beta2: StrictFloat = Field(
        default=_D["beta2"], ge=0.0, lt=1.0, description="AdamW's second-moment decay"
    )
    lr_schedule: LRSchedule = _D["lr_schedule"]
    warmup_steps: StrictInt = Field(default=_D["warmup_steps"], ge=0, le=L.MAX_STEPS)
    min_lr_ratio: StrictFloat = Field(default=_D["min_lr_ratio"], ge=0.0, le=1.0)
    log_every_steps: StrictInt = Field(default=_D["log_every_steps"], ge=1, le=L.MAX_STEPS)
    eval_every_steps: StrictInt | None = Field(default=_D["eval_every_steps"], ge=1, le=L.MAX_STEPS)
    eval_max_batches: StrictInt = Field(default=_D["eval_max_batches"], ge=1, le=L.MAX_EVAL_BATCHES)
    checkpoint_every_steps: StrictInt | None = Field(
        default=_D["checkpoint_every_steps"], ge=1, le=L.MAX_STEPS
    )
    keep_checkpoints: StrictInt = Field(
        default=_D["keep_checkpoints"],
        ge=1,
        le=L.MAX_KEEP_CHECKPOINTS,
        description="the newest checkpoints kept",
    )
    keep_best_checkpoints: StrictInt = Field(
        default=_D["keep_best_checkpoints"],
        ge=1,
        le=L.MAX_KEEP_CHECKPOINTS,
        description="the checkpoints with the lowest validation loss kept besides the newest",
    )
    early_stopping_patience: StrictInt | None = Field(
        default=_D["early_stopping_patience"],
        ge=1,
        le=L.MAX_PATIENCE,
        description="stop after this many evaluations without val_loss improving",
    )
    early_stopping_min_delta: StrictFloat = Field(
        default=_D["early_stopping_min_delta"],
        ge=0.0,
        le=L.MAX_MIN_DELTA,
        description="the least decrease of val_loss that counts as improving",
    )
    grad_norm_alert_max: StrictFloat | None = Field(
        default=_D["grad_norm_alert_max"],
        gt=0.0,
        le=L.MAX_GRAD_NORM_ALERT,
        description="alert (exploding_gradients) when the gradient norm exceeds this",
    )
    grad_norm_alert_min: StrictFloat | None = Field(
        default=_D["grad_norm_alert_min"],
        gt=0.0,
        le=L.MAX_GRAD_NORM_ALERT,
        description="alert (vanishing_gradients) when the gradient norm falls below this",
    )
    val_loss_spike_ratio: StrictFloat | None = Field(
        default=_D["val_loss_spike_ratio"],
        gt=0.0,
        le=L.MAX_SPIKE_RATIO,
        description="alert (val_loss_spike) when val_loss rises this fraction above its best",
    )
    continue_from: StrictStr | None = Field(
        default=None,
        max_length=2 * L.MAX_ID_CHARS,
        description="`run_id@step` (a checkpoint) or `run_id` (its final model) of one of the "
        "caller's runs to start from; same model_family, model_size and tokenizer",
    )
    timeout_s: StrictInt | None = Field(default=None, ge=1, description=_TIMEOUT_S)
    priority: Priority = Field(default="normal", description=_PRIORITY)


_TRAIN_OPTIONS = TypeAdapter(TrainOptions)


def train_options(fields: Mapping[str, object]) -> TrainOptions:
    """The TrainOptions among a train request's fields (the others are ignored), typed by
    pydantic itself, so no field is copied by hand between the request and the contract."""
    try:
        return _TRAIN_OPTIONS.validate_python(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise ModelTrainerError(
            "INVALID_CONFIG", f"{field}: {first['msg']}", details={"field": field}
        ) from exc


def train_request_options(body: TrainJobRequest) -> TrainOptions:
    return train_options(asdict(body))


@dataclass(frozen=True, config=_REQUEST)
class EvalJobRequest:
    """`POST /v1/jobs/eval`: a trained run's loss on a corpus (default: its training corpus)."""

    run_id: StrictStr | None = Field(default=None, max_length=L.MAX_ID_CHARS, description=_RUN_ID)
    model: StrictStr | None = Field(
        default=None, max_length=L.MAX_MODEL_REF_CHARS, description=_MODEL_REF
    )
    step: StrictInt | None = Field(default=None, ge=0, le=L.MAX_STEPS, description=_STEP)
    corpus_id: StrictStr | None = Field(default=None, max_length=64, description=_CORPUS_ID)
    corpus_path: StrictStr | None = Field(
        default=None, max_length=L.MAX_PATH_CHARS, description=_CORPUS_PATH
    )
    split: EvalSplit = "validation"
    val_fraction: StrictFloat = Field(default=0.1, gt=0.0, lt=1.0)
    max_seq_len: StrictInt = Field(default=128, ge=1, le=L.MAX_SEQ_LEN)
    batch_size: StrictInt = Field(default=32, ge=1, le=L.MAX_BATCH_SIZE)
    max_batches: StrictInt | None = Field(default=None, ge=1, le=L.MAX_EVAL_BATCHES)
    timeout_s: StrictInt | None = Field(default=None, ge=1, description=_TIMEOUT_S)
    priority: Priority = Field(default="normal", description=_PRIORITY)


@dataclass(frozen=True, config=_REQUEST)
class ScoreJobRequest:
    """`POST /v1/jobs/score`: per-token probabilities of a text (inline or a file)."""

    run_id: StrictStr | None = Field(default=None, max_length=L.MAX_ID_CHARS, description=_RUN_ID)
    model: StrictStr | None = Field(
        default=None, max_length=L.MAX_MODEL_REF_CHARS, description=_MODEL_REF
    )
    step: StrictInt | None = Field(default=None, ge=0, le=L.MAX_STEPS, description=_STEP)
    text: StrictStr | None = Field(default=None, max_length=L.MAX_TEXT_CHARS, description=_TEXT)
    path: StrictStr | None = Field(
        default=None, max_length=L.MAX_PATH_CHARS, description=_CORPUS_PATH
    )
    detail_level: DetailLevel = "summary"
    top_k: StrictInt | None = Field(default=None, ge=1, le=L.MAX_SCORE_TOP_K)
    seed: StrictInt | None = Field(default=None, ge=0, le=L.MAX_SEED)
    timeout_s: StrictInt | None = Field(default=None, ge=1, description=_TIMEOUT_S)
    priority: Priority = Field(default="normal", description=_PRIORITY)


@dataclass(frozen=True, config=_REQUEST)
class GenerateJobRequest:
    """`POST /v1/jobs/generate`: sample continuations of a prompt (inline or a file)."""

    run_id: StrictStr | None = Field(default=None, max_length=L.MAX_ID_CHARS, description=_RUN_ID)
    model: StrictStr | None = Field(
        default=None, max_length=L.MAX_MODEL_REF_CHARS, description=_MODEL_REF
    )
    step: StrictInt | None = Field(default=None, ge=0, le=L.MAX_STEPS, description=_STEP)
    prompt_text: StrictStr | None = Field(
        default=None, max_length=L.MAX_TEXT_CHARS, description=_TEXT
    )
    prompt_path: StrictStr | None = Field(
        default=None, max_length=L.MAX_PATH_CHARS, description=_CORPUS_PATH
    )
    max_new_tokens: StrictInt = Field(default=100, ge=1, le=L.MAX_NEW_TOKENS)
    temperature: StrictFloat = Field(default=1.0, gt=0.0, le=L.MAX_TEMPERATURE)
    top_k: StrictInt = Field(default=0, ge=0, le=L.MAX_SAMPLE_TOP_K, description="0: no cut")
    top_p: StrictFloat = Field(default=1.0, gt=0.0, le=1.0)
    stop_on_eos: StrictBool = True
    seed: StrictInt | None = Field(default=None, ge=0, le=L.MAX_SEED)
    num_return_sequences: StrictInt = Field(default=1, ge=1, le=L.MAX_RETURN_SEQUENCES)
    timeout_s: StrictInt | None = Field(default=None, ge=1, description=_TIMEOUT_S)
    priority: Priority = Field(default="normal", description=_PRIORITY)


@dataclass(frozen=True, config=_REQUEST)
class ExportJobRequest:
    """`POST /v1/jobs/export`: a finished run as a .tar.gz bundle (Hugging Face files, ONNX,
    a standalone inference.py), downloaded from `GET /v1/jobs/{job_id}/bundle`."""

    run_id: StrictStr | None = Field(default=None, max_length=L.MAX_ID_CHARS, description=_RUN_ID)
    model: StrictStr | None = Field(
        default=None, max_length=L.MAX_MODEL_REF_CHARS, description=_MODEL_REF
    )
    step: StrictInt | None = Field(default=None, ge=0, le=L.MAX_STEPS, description=_STEP)
    timeout_s: StrictInt | None = Field(default=None, ge=1, description=_TIMEOUT_S)
    priority: Priority = Field(default="normal", description=_PRIORITY)


@dataclass(frozen=True, config=_REQUEST)
class TokenizerJobRequest:
    """`POST /v1/jobs/tokenizer`: train a tokenizer on one corpus; its id is in the result."""

    kind: TokenizerKind = "bpe"
    corpus_id: StrictStr | None = Field(default=None, max_length=64, description=_CORPUS_ID)
    corpus_path: StrictStr | None = Field(
        default=None, max_length=L.MAX_PATH_CHARS, description=_CORPUS_PATH
    )
    tokenizer_id: StrictStr | None = Field(
        default=None, max_length=L.MAX_ID_CHARS, description="defaults to {kind}-{job_id}"
    )
    vocab_size: StrictInt | None = Field(
        default=None,
        ge=MIN_CHAR_VOCAB_SIZE,
        le=MAX_VOCAB_SIZE,
        description=(
            f"vocabulary size, specials included: bpe {MIN_BPE_VOCAB_SIZE}..{MAX_BPE_VOCAB_SIZE}"
            f" (default {DEFAULT_BPE_VOCAB_SIZE}); char {MIN_CHAR_VOCAB_SIZE}..{MAX_VOCAB_SIZE},"
            " keeping the most frequent characters (default: all of them)"
        ),
    )
    timeout_s: StrictInt | None = Field(default=None, ge=1, description=_TIMEOUT_S)
    priority: Priority = Field(default="normal", description=_PRIORITY)


@dataclass(frozen=True, config=_REQUEST)
class CreateModelRequest:
    """`POST /v1/models`: a new name in the caller's model registry."""

    name: StrictStr = Field(pattern=L.MODEL_NAME_PATTERN)
    description: StrictStr = Field(default="", max_length=L.MAX_DESCRIPTION_CHARS)


@dataclass(frozen=True, config=_REQUEST)
class RegisterVersionRequest:
    """`POST /v1/models/{name}/versions`: the next version, pointing at a finished run of the
    caller's (its final model, or the checkpoint at `step`)."""

    run_id: StrictStr = Field(max_length=L.MAX_ID_CHARS)
    step: StrictInt | None = Field(
        default=None, ge=0, le=L.MAX_STEPS, description="a checkpoint's step; default: final"
    )


@dataclass(frozen=True, config=_REQUEST)
class PromoteRequest:
    """`PUT /v1/models/{name}/aliases/{alias}`: point the alias at a version."""

    version: StrictInt = Field(ge=1, le=L.MAX_VERSIONS_PER_MODEL)
    force: StrictBool = Field(
        default=False,
        description="promote even when its val_loss is worse than the current holder's",
    )


_PARAM_NAME = (
    "a train request field: ints "
    + ", ".join(S.INT_FIELDS)
    + "; floats "
    + ", ".join(S.FLOAT_FIELDS)
    + "; categorical also model_size, lr_schedule, precision"
)


@dataclass(frozen=True, config=_REQUEST)
class ParamRequest:
    """One field of the base request a study tunes: an `int` or `float` range (low..high,
    optionally `log`-uniform or on a `step` grid), or `categorical` choices."""

    name: StrictStr = Field(max_length=64, description=_PARAM_NAME)
    type: S.ParamKind = Field(description="int or float range, or categorical choices")
    low: StrictFloat | StrictInt | None = None
    high: StrictFloat | StrictInt | None = None
    step: StrictFloat | StrictInt | None = Field(default=None, gt=0)
    log: StrictBool = False
    choices: list[StrictStr | StrictInt | StrictFloat | StrictBool] | None = Field(
        default=None, min_length=1, max_length=S.MAX_CHOICES
    )


@dataclass(frozen=True, config=_REQUEST)
class StudyRequest:
    """`POST /v1/studies`: tune a train request with Optuna; every trial is a train job."""

    base: TrainJobRequest = Field(description="the train request every trial starts from")
    search_space: list[ParamRequest] = Field(min_length=1, max_length=S.MAX_PARAMS)
    n_trials: StrictInt = Field(ge=1, le=S.MAX_TRIALS)
    name: StrictStr = Field(default="", max_length=S.MAX_STUDY_NAME_CHARS)
    sampler: S.SamplerKind = Field(
        default="tpe", description="grid tries every combination of int ranges and choices"
    )
    parallelism: StrictInt = Field(
        default=1, ge=1, le=S.MAX_PARALLEL_TRIALS, description="trials running at once"
    )
    timeout_s: StrictInt | None = Field(
        default=None,
        ge=1,
        le=S.MAX_STUDY_TIMEOUT_S,
        description="no trial starts after this many seconds; running ones finish",
    )
    pruner: S.PrunerKind = Field(
        default="none",
        description="median: stop a trial whose val_loss at a step is worse than the median of "
        "earlier trials' at that step (needs base.eval_every_steps)",
    )
    pruner_startup_trials: StrictInt = Field(
        default=5, ge=0, le=S.MAX_TRIALS, description="trials that finish before any is pruned"
    )
    pruner_warmup_steps: StrictInt = Field(
        default=0, ge=0, le=L.MAX_STEPS, description="steps of a trial before it may be pruned"
    )
    metric: Literal["val_loss"] = Field(
        default="val_loss", description="minimised: each trial's best val_loss"
    )
    seed: StrictInt = Field(default=0, ge=0, le=L.MAX_SEED, description="the sampler's seed")


@dataclass(frozen=True, config=_REQUEST)
class CreateScheduleRequest:
    """`POST /v1/schedules`: submit `request` as a `job_type` job on a cron expression or every
    `interval_s` seconds, as the caller (README, "Schedules")."""

    job_type: JobType
    request: dict[str, JSONValue] = Field(
        description="the body `POST /v1/jobs/{job_type}` takes; checked now, and submitted "
        "afresh at every firing (train: no run_id, tokenizer: no tokenizer_id, since each "
        "firing makes a new one)"
    )
    cron: StrictStr | None = Field(
        default=None,
        max_length=L.MAX_CRON_CHARS,
        description="`minute hour day-of-month month day-of-week` in the scheduler's time zone "
        "(UTC under compose); give this or interval_s",
    )
    interval_s: StrictInt | None = Field(
        default=None,
        ge=1,
        le=L.MAX_SCHEDULE_INTERVAL_S,
        description="fire every this many seconds, the first time one interval after creation; "
        "at least MIN_SCHEDULE_INTERVAL_S (settings)",
    )
    name: StrictStr | None = Field(default=None, max_length=L.MAX_SCHEDULE_NAME_CHARS)
