"""Request bodies: pydantic models live here, at the HTTP boundary, and nowhere else.

Responses need no mirror here: their models are the TypedDicts the routes return (job records,
run summaries, the error body), which pydantic reads as they are.

Requests are strict (no "3" for 3, no true for 1, no NaN) and refuse unknown fields, so a typo
is an error instead of a silently ignored setting. Train defaults are read from the contract's
TRAIN_DEFAULTS; the others equal the `make_*_config` builders' (a unit test keeps them equal);
range checks stay in the validators.

Pydantic dataclasses rather than BaseModel: mypy types their generated `__init__` from the
fields, while BaseModel's catch-all `**data` constructor trips mypy's disallow_any_explicit.
Strictness is per field (Strict* types) because a strict dataclass refuses a JSON object.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict

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

from model_trainer.contracts.model import (
    DetailLevel,
    DeviceChoice,
    EvalSplit,
    LRSchedule,
    Precision,
)
from model_trainer.contracts.tokenizer import TokenizerKind
from model_trainer.contracts.train_config import TRAIN_DEFAULTS, TrainOptions
from model_trainer.errors import ModelTrainerError

_REQUEST = ConfigDict(extra="forbid", allow_inf_nan=False)
_D = TRAIN_DEFAULTS

_CORPUS_ID = "sha256 of an uploaded corpus (`POST /v1/corpora`); give this or corpus_path"
_CORPUS_PATH = "a text file under DATA_ROOT (relative paths are relative to it)"
_TIMEOUT_S = (
    "wall-clock limit in seconds; at most the server's limit for the job type "
    "(JOB_TIMEOUT_S_<TYPE>), which is also the default"
)
_TOKENIZER_ID = (
    "a stored tokenizer (`POST /v1/jobs/tokenizer`); default: a character tokenizer of the corpus"
)


@dataclass(frozen=True, config=_REQUEST)
class TrainJobRequest:
    """`POST /v1/jobs/train`: train a model from scratch on one corpus.

    The tunables are `TrainOptions` (contracts/train_config.py), with its defaults.
    """

    model_family: StrictStr
    model_size: StrictStr
    corpus_id: StrictStr | None = Field(default=None, description=_CORPUS_ID)
    corpus_path: StrictStr | None = Field(default=None, description=_CORPUS_PATH)
    run_id: StrictStr | None = Field(default=None, description="defaults to run-{job_id}")
    tokenizer_id: StrictStr | None = Field(default=None, description=_TOKENIZER_ID)
    max_seq_len: StrictInt = _D["max_seq_len"]
    num_epochs: StrictInt = _D["num_epochs"]
    batch_size: StrictInt = _D["batch_size"]
    learning_rate: StrictFloat = _D["learning_rate"]
    seed: StrictInt = _D["seed"]
    device: DeviceChoice = _D["device"]
    precision: Precision = _D["precision"]
    max_steps: StrictInt | None = _D["max_steps"]
    time_budget_s: StrictFloat | StrictInt | None = _D["time_budget_s"]
    compile: StrictBool = _D["compile"]
    init_from: StrictStr | None = Field(
        default=_D["init_from"],
        description="gpt2 only: fine-tune from a Hugging Face checkpoint directory under "
        "DATA_ROOT or ARTIFACTS_ROOT (needs the checkpoint's tokenizer_id)",
    )
    val_fraction: StrictFloat = _D["val_fraction"]
    grad_clip: StrictFloat | None = _D["grad_clip"]
    grad_accum_steps: StrictInt = _D["grad_accum_steps"]
    weight_decay: StrictFloat = _D["weight_decay"]
    beta2: StrictFloat = Field(default=_D["beta2"], description="AdamW's second-moment decay")
    lr_schedule: LRSchedule = _D["lr_schedule"]
    warmup_steps: StrictInt = _D["warmup_steps"]
    min_lr_ratio: StrictFloat = _D["min_lr_ratio"]
    log_every_steps: StrictInt = _D["log_every_steps"]
    eval_every_steps: StrictInt | None = _D["eval_every_steps"]
    eval_max_batches: StrictInt = _D["eval_max_batches"]
    checkpoint_every_steps: StrictInt | None = _D["checkpoint_every_steps"]
    keep_checkpoints: StrictInt = _D["keep_checkpoints"]
    timeout_s: StrictInt | None = Field(default=None, description=_TIMEOUT_S)


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

    run_id: StrictStr
    corpus_id: StrictStr | None = Field(default=None, description=_CORPUS_ID)
    corpus_path: StrictStr | None = Field(default=None, description=_CORPUS_PATH)
    split: EvalSplit = "validation"
    val_fraction: StrictFloat = 0.1
    max_seq_len: StrictInt = 128
    batch_size: StrictInt = 32
    max_batches: StrictInt | None = None
    timeout_s: StrictInt | None = Field(default=None, description=_TIMEOUT_S)


@dataclass(frozen=True, config=_REQUEST)
class ScoreJobRequest:
    """`POST /v1/jobs/score`: per-token probabilities of a text (inline or a file)."""

    run_id: StrictStr
    text: StrictStr | None = None
    path: StrictStr | None = Field(default=None, description=_CORPUS_PATH)
    detail_level: DetailLevel = "summary"
    top_k: StrictInt | None = None
    seed: StrictInt | None = None
    timeout_s: StrictInt | None = Field(default=None, description=_TIMEOUT_S)


@dataclass(frozen=True, config=_REQUEST)
class GenerateJobRequest:
    """`POST /v1/jobs/generate`: sample continuations of a prompt (inline or a file)."""

    run_id: StrictStr
    prompt_text: StrictStr | None = None
    prompt_path: StrictStr | None = Field(default=None, description=_CORPUS_PATH)
    max_new_tokens: StrictInt = 100
    temperature: StrictFloat = 1.0
    top_k: StrictInt = 0
    top_p: StrictFloat = 1.0
    stop_on_eos: StrictBool = True
    seed: StrictInt | None = None
    num_return_sequences: StrictInt = 1
    timeout_s: StrictInt | None = Field(default=None, description=_TIMEOUT_S)


@dataclass(frozen=True, config=_REQUEST)
class TokenizerJobRequest:
    """`POST /v1/jobs/tokenizer`: train a tokenizer on one corpus; its id is in the result."""

    kind: TokenizerKind = "bpe"
    corpus_id: StrictStr | None = Field(default=None, description=_CORPUS_ID)
    corpus_path: StrictStr | None = Field(default=None, description=_CORPUS_PATH)
    tokenizer_id: StrictStr | None = Field(default=None, description="defaults to {kind}-{job_id}")
    vocab_size: StrictInt | None = Field(
        default=None,
        description=(
            "vocabulary size, specials included: bpe 259..1000000 (default 8192); "
            "char keeps the most frequent characters (default: all of them)"
        ),
    )
    timeout_s: StrictInt | None = Field(default=None, description=_TIMEOUT_S)
