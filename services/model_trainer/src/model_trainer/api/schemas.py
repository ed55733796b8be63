"""Request and response bodies: pydantic lives here, at the HTTP boundary, and nowhere else.

Requests are strict (no "3" for 3, no true for 1, no NaN) and refuse unknown fields, so a typo
is an error instead of a silently ignored setting. Defaults equal those of the contracts'
`make_*_config` builders (a unit test keeps them equal); range checks stay in the validators.

Pydantic dataclasses rather than BaseModel: mypy types their generated `__init__` from the
fields, while BaseModel's catch-all `**data` constructor trips mypy's disallow_any_explicit.
Strictness is per field (Strict* types) because a strict dataclass refuses a JSON object.
"""

from __future__ import annotations

from pydantic import ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr
from pydantic.dataclasses import dataclass

from model_trainer.contracts.jobs import ErrorKind, JobStatus, JobType, QueueName
from model_trainer.contracts.model import (
    DetailLevel,
    DeviceChoice,
    EvalSplit,
    LRSchedule,
    Precision,
)
from model_trainer.contracts.tokenizer import TokenizerKind

_REQUEST = ConfigDict(extra="forbid", allow_inf_nan=False)

_CORPUS_ID = "sha256 of an uploaded corpus (`POST /v1/corpora`); give this or corpus_path"
_CORPUS_PATH = "a text file under DATA_ROOT (relative paths are relative to it)"
_TOKENIZER_ID = (
    "a stored tokenizer (`POST /v1/jobs/tokenizer`); default: a character tokenizer of the corpus"
)


@dataclass(frozen=True, config=_REQUEST)
class TrainJobRequest:
    """`POST /v1/jobs/train`: train a model from scratch on one corpus."""

    model_family: StrictStr
    model_size: StrictStr
    corpus_id: StrictStr | None = Field(default=None, description=_CORPUS_ID)
    corpus_path: StrictStr | None = Field(default=None, description=_CORPUS_PATH)
    run_id: StrictStr | None = Field(default=None, description="defaults to run-{job_id}")
    tokenizer_id: StrictStr | None = Field(default=None, description=_TOKENIZER_ID)
    max_seq_len: StrictInt = 128
    num_epochs: StrictInt = 1
    batch_size: StrictInt = 32
    learning_rate: StrictFloat = 3e-3
    seed: StrictInt = 0
    device: DeviceChoice = "auto"
    precision: Precision = "auto"
    max_steps: StrictInt | None = None
    time_budget_s: StrictFloat | StrictInt | None = None
    compile: StrictBool = False
    init_from: StrictStr | None = Field(
        default=None,
        description="gpt2 only: fine-tune from a Hugging Face checkpoint directory under "
        "DATA_ROOT or ARTIFACTS_ROOT (needs the checkpoint's tokenizer_id)",
    )
    val_fraction: StrictFloat = 0.1
    grad_clip: StrictFloat | None = 1.0
    grad_accum_steps: StrictInt = 1
    weight_decay: StrictFloat = 0.0
    lr_schedule: LRSchedule = "cosine"
    warmup_steps: StrictInt = 0
    min_lr_ratio: StrictFloat = 0.1
    log_every_steps: StrictInt = 10
    eval_every_steps: StrictInt | None = None
    eval_max_batches: StrictInt = 50
    checkpoint_every_steps: StrictInt | None = 200
    keep_checkpoints: StrictInt = 2


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


@dataclass(frozen=True, config=_REQUEST)
class ScoreJobRequest:
    """`POST /v1/jobs/score`: per-token probabilities of a text (inline or a file)."""

    run_id: StrictStr
    text: StrictStr | None = None
    path: StrictStr | None = Field(default=None, description=_CORPUS_PATH)
    detail_level: DetailLevel = "summary"
    top_k: StrictInt | None = None
    seed: StrictInt | None = None


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


@dataclass(frozen=True)
class JobAccepted:
    """202 body of every job submission."""

    job_id: str
    type: JobType
    status: JobStatus
    queue: QueueName
    run_id: str | None = Field(description="the run a job trains or uses; null for tokenizer jobs")


@dataclass(frozen=True)
class JobErrorView:
    code: str
    kind: ErrorKind
    message: str


@dataclass(frozen=True)
class JobView:
    """A job record as stored (`trainer:job:{job_id}`)."""

    job_id: str
    user_id: int
    type: JobType
    queue: QueueName
    status: JobStatus
    progress: float
    message: str
    attempts: int
    created_at: str
    started_at: str | None
    finished_at: str | None
    heartbeat_at: str | None
    run_id: str | None
    result: dict[str, object] | None
    error: JobErrorView | None


@dataclass(frozen=True)
class JobList:
    jobs: list[JobView]
    next_cursor: str | None


@dataclass(frozen=True)
class CorpusUploaded:
    corpus_id: str
    bytes: int
    sha256: str


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    model_family: str
    model_size: str
    num_params: int
    device: str
    corpus_sha256: str
    loss: float
    val_loss: float | None
    created_at: str
    completed_at: str


@dataclass(frozen=True)
class RunList:
    runs: list[RunSummary]


@dataclass(frozen=True)
class Health:
    status: str


@dataclass(frozen=True)
class QueueWorkers:
    train: int
    infer: int


@dataclass(frozen=True)
class Readiness:
    redis: bool
    workers: QueueWorkers


@dataclass(frozen=True)
class ErrorInfoView:
    code: str
    message: str
    details: dict[str, object]


@dataclass(frozen=True)
class ErrorView:
    """The one error body shape, for the OpenAPI document."""

    error: ErrorInfoView
