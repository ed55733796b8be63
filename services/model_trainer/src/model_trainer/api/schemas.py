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

A few train defaults depend on the model family (`FAMILY_TRAIN_DEFAULTS`): a before-validator
fills the ones a request leaves out from its family's recipe, so every field keeps its type and
range, and what is recorded, queued and checked at submit is the value the run uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Annotated, Literal

from fastapi import Path, Query
from pydantic import (
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic.config import JsonDict
from pydantic.dataclasses import dataclass
from pydantic_core import ArgsKwargs

from model_trainer.backends.presets import CAPABILITIES, MODEL_SIZES
from model_trainer.contracts import limits as L
from model_trainer.contracts import studies as S
from model_trainer.contracts.jobs import JobType, Priority
from model_trainer.contracts.model import (
    MODEL_FAMILIES,
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
from model_trainer.contracts.train_config import (
    FAMILY_TRAIN_DEFAULTS,
    TRAIN_DEFAULTS,
    FamilyOption,
    TrainOptions,
)
from model_trainer.errors import ModelTrainerError
from platform_core.json_types import JSONValue

_REQUEST = ConfigDict(extra="forbid", allow_inf_nan=False)
_D = TRAIN_DEFAULTS

# Examples that OpenAPI shows beside fields and parameters.
EXAMPLE_JOB_ID = "6f1c0a1e4b2d4c8e9a7b5d3f1e2c4a6b"
EXAMPLE_RUN_ID = f"run-{EXAMPLE_JOB_ID}"
EXAMPLE_CURSOR = "MTc2NDkwMjUyMzQ1Njo2ZjFjMGExZTRiMmQ0YzhlOWE3YjVkM2YxZTJjNGE2Yg=="
EXAMPLE_CORPUS_ID = "9d5ed678fe57bcca610140957afab571a1d4e1b5b7e2e2d6c47aa2c16a3e0e2b"

_FAMILY = "the model family: char_lstm (a character-level LSTM) or gpt2 (GPT-2 from Hugging Face)"
_SIZE = "a size the family offers: " + "; ".join(
    f"{family} {', '.join(CAPABILITIES[family]['supported_sizes'])}" for family in MODEL_FAMILIES
)
_CORPUS_ID = "sha256 of an uploaded corpus (`POST /v1/corpora`); give this or corpus_path"
_CORPUS_PATH = "a text file under DATA_ROOT (relative paths are relative to it)"
_TIMEOUT_S = (
    "wall-clock limit in seconds; at most the server's limit for the job type "
    "(JOB_TIMEOUT_S_<TYPE>), which is also the default"
)
_PRIORITY = (
    "workers take every high job of a queue before any normal one, and every normal one "
    "before any low one; per-user limits count all three alike"
)


def _family_default(option: FamilyOption) -> str:
    """How OpenAPI documents an option whose default depends on the family."""
    values = ", ".join(
        f"{family} {_shown(defaults[option])}" for family, defaults in FAMILY_TRAIN_DEFAULTS.items()
    )
    return f"default: the family's ({values})"


def _shown(value: float | str) -> str:
    return value if isinstance(value, str) else f"{value:g}"


def _no_single_default(schema: JsonDict) -> None:
    """OpenAPI shows no one default where the family decides it (the description names each)."""
    schema.pop("default", None)


def _family_recipe(family: object) -> dict[str, object]:
    """The family-dependent defaults of a requested family; none for a family we do not
    know (the validators refuse it by name)."""
    for known, recipe in FAMILY_TRAIN_DEFAULTS.items():
        if known == family:
            return dict(recipe)
    return {}


_TEXT = "inline text, at most MAX_TEXT_BYTES (settings) in UTF-8"
_SEED = "seeds the random choices: the same seed gives the same result"

# Fields several requests share.
CorpusId = Annotated[
    StrictStr | None, Field(max_length=64, description=_CORPUS_ID, examples=[EXAMPLE_CORPUS_ID])
]
CorpusPath = Annotated[
    StrictStr | None,
    Field(max_length=L.MAX_PATH_CHARS, description=_CORPUS_PATH, examples=["shakespeare.txt"]),
]
RunRef = Annotated[
    StrictStr | None,
    Field(
        max_length=L.MAX_ID_CHARS,
        description="a finished run of yours; give this or model",
        examples=[EXAMPLE_RUN_ID],
    ),
]
ModelRef = Annotated[
    StrictStr | None,
    Field(
        max_length=L.MAX_MODEL_REF_CHARS,
        description="a registered model version instead of run_id: `name@alias` or "
        "`name/version` (`/v1/models`); its run (and checkpoint) is used",
        examples=["shakespeare@production"],
    ),
]
Step = Annotated[
    StrictInt | None,
    Field(
        ge=0,
        le=L.MAX_STEPS,
        description="a checkpoint of the run (`GET /v1/runs/{run_id}/checkpoints`) to use "
        "instead of its final model",
        examples=[400],
    ),
]
TimeoutS = Annotated[StrictInt | None, Field(ge=1, description=_TIMEOUT_S, examples=[600])]
JobPriority = Annotated[Priority, Field(description=_PRIORITY, examples=["high"])]


@dataclass(frozen=True, config=_REQUEST)
class TrainJobRequest:
    """`POST /v1/jobs/train`: train a model from scratch on one corpus.

    The tunables are `TrainOptions` (contracts/train_config.py), with its defaults; those that
    depend on the family come from `FAMILY_TRAIN_DEFAULTS` (`_with_family_defaults`).
    """

    model_family: StrictStr = Field(
        max_length=32,
        description=_FAMILY,
        examples=["char_lstm"],
        # Listed for clients; checked by the validators, which name what went wrong
        # (UNKNOWN_MODEL_FAMILY, INVALID_MODEL_SIZE: 400) rather than pydantic (422).
        json_schema_extra={"enum": [*MODEL_FAMILIES]},
    )
    model_size: StrictStr = Field(
        max_length=32,
        description=_SIZE,
        examples=["tiny"],
        json_schema_extra={"enum": [*MODEL_SIZES]},
    )
    corpus_id: CorpusId = None
    corpus_path: CorpusPath = None
    run_id: StrictStr | None = Field(
        default=None,
        max_length=L.MAX_ID_CHARS,
        description="the new run's id (default run-{job_id}); one of your runs that never "
        "finished resumes from its latest checkpoint",
        examples=["shakespeare-lstm-1"],
    )
    tokenizer_id: StrictStr | None = Field(
        default=None,
        max_length=L.MAX_ID_CHARS,
        description="a stored tokenizer (`POST /v1/jobs/tokenizer`); default: a character "
        "tokenizer of the corpus",
        examples=["bpe-6f1c0a1e4b2d4c8e9a7b5d3f1e2c4a6b"],
    )
    max_seq_len: StrictInt = Field(
        default=_D["max_seq_len"],
        ge=1,
        le=L.MAX_SEQ_LEN,
        description="tokens per window; gpt2 sizes take at most their context "
        "(tiny 128, nano 256, small and medium 1024); " + _family_default("max_seq_len"),
        examples=[256],
        json_schema_extra=_no_single_default,
    )
    num_epochs: StrictInt = Field(
        default=_D["num_epochs"],
        ge=1,
        le=L.MAX_EPOCHS,
        description="passes over the corpus; leave it at 1 when max_steps is given",
        examples=[3],
    )
    batch_size: StrictInt = Field(
        default=_D["batch_size"],
        ge=1,
        le=L.MAX_BATCH_SIZE,
        description="windows per micro-batch; an optimizer step takes grad_accum_steps of them; "
        + _family_default("batch_size"),
        examples=[64],
        json_schema_extra=_no_single_default,
    )
    learning_rate: StrictFloat = Field(
        default=_D["learning_rate"],
        gt=0.0,
        le=L.MAX_LEARNING_RATE,
        description="AdamW's peak learning rate (after warmup); "
        + _family_default("learning_rate"),
        examples=[1e-3],
        json_schema_extra=_no_single_default,
    )
    seed: StrictInt = Field(
        default=_D["seed"],
        ge=0,
        le=L.MAX_SEED,
        description="seeds the weights, the data order and the split: on a CPU the same seed "
        "trains the same weights",
        examples=[42],
    )
    device: DeviceChoice = Field(
        default=_D["device"],
        description="where to train; auto picks cuda, then mps, then cpu",
        examples=["cpu"],
    )
    precision: Precision = Field(
        default=_D["precision"],
        description="auto: bf16 autocast on CUDA, fp32 elsewhere; bf16: bf16 autocast "
        "(a char_lstm's recurrence stays fp32 on CPUs without AVX-512); "
        + _family_default("precision"),
        examples=["fp32"],
        json_schema_extra=_no_single_default,
    )
    max_steps: StrictInt | None = Field(
        default=_D["max_steps"],
        ge=1,
        le=L.MAX_STEPS,
        description="optimizer steps to run, repeating the corpus as often as that takes; "
        "when given, num_epochs must stay 1",
        examples=[2000],
    )
    time_budget_s: StrictFloat | StrictInt | None = Field(
        default=_D["time_budget_s"],
        gt=0,
        le=L.MAX_TIME_BUDGET_S,
        description="stop training after this many seconds (stop_reason time_budget)",
        examples=[120],
    )
    compile: StrictBool = Field(
        default=_D["compile"],
        description="torch.compile the model; honoured on CUDA only",
        examples=[True],
    )
    init_from: StrictStr | None = Field(
        default=_D["init_from"],
        max_length=L.MAX_PATH_CHARS,
        description="gpt2 only: fine-tune from a Hugging Face checkpoint directory under "
        "DATA_ROOT or one of the caller's runs (needs the checkpoint's tokenizer_id)",
        examples=["checkpoints/gpt2-nano"],
    )
    val_fraction: StrictFloat = Field(
        default=_D["val_fraction"],
        ge=0.0,
        lt=1.0,
        description="share of the corpus held out for validation; 0 for none (early stopping "
        "and studies need one)",
        examples=[0.05],
    )
    grad_clip: StrictFloat | None = Field(
        default=_D["grad_clip"],
        gt=0.0,
        le=L.MAX_GRAD_CLIP,
        description="clip the global gradient norm to this; null: no clipping",
        examples=[0.5],
    )
    grad_accum_steps: StrictInt = Field(
        default=_D["grad_accum_steps"],
        ge=1,
        le=L.MAX_GRAD_ACCUM_STEPS,
        description="micro-batches whose gradients add up to one optimizer step",
        examples=[4],
    )
    weight_decay: StrictFloat = Field(
        default=_D["weight_decay"],
        ge=0.0,
        le=L.MAX_WEIGHT_DECAY,
        description="AdamW's decoupled weight decay",
        examples=[0.1],
    )
    beta2: StrictFloat = Field(
        default=_D["beta2"],
        ge=0.0,
        lt=1.0,
        description="AdamW's second-moment decay; " + _family_default("beta2"),
        examples=[0.99],
        json_schema_extra=_no_single_default,
    )
    lr_schedule: LRSchedule = Field(
        default=_D["lr_schedule"],
        description="after warmup: constant, or cosine decay to min_lr_ratio x learning_rate",
        examples=["constant"],
    )
    warmup_steps: StrictInt = Field(
        default=_D["warmup_steps"],
        ge=0,
        le=L.MAX_STEPS,
        description="steps of linear warmup to learning_rate; " + _family_default("warmup_steps"),
        examples=[100],
        json_schema_extra=_no_single_default,
    )
    min_lr_ratio: StrictFloat = Field(
        default=_D["min_lr_ratio"],
        ge=0.0,
        le=1.0,
        description="where the cosine schedule ends, as a fraction of learning_rate; "
        + _family_default("min_lr_ratio"),
        examples=[0.05],
        json_schema_extra=_no_single_default,
    )
    log_every_steps: StrictInt = Field(
        default=_D["log_every_steps"],
        ge=1,
        le=L.MAX_STEPS,
        description="steps between metric reports (progress events, the metrics history)",
        examples=[25],
    )
    eval_every_steps: StrictInt | None = Field(
        default=_D["eval_every_steps"],
        ge=1,
        le=L.MAX_STEPS,
        description="steps between validations; null: at each epoch's end and at checkpoints",
        examples=[200],
    )
    eval_max_batches: StrictInt = Field(
        default=_D["eval_max_batches"],
        ge=1,
        le=L.MAX_EVAL_BATCHES,
        description="validation batches per validation, at most",
        examples=[20],
    )
    checkpoint_every_steps: StrictInt | None = Field(
        default=_D["checkpoint_every_steps"],
        ge=1,
        le=L.MAX_STEPS,
        description="steps between checkpoints; null: none before the end",
        examples=[500],
    )
    keep_checkpoints: StrictInt = Field(
        default=_D["keep_checkpoints"],
        ge=1,
        le=L.MAX_KEEP_CHECKPOINTS,
        description="the newest checkpoints kept",
        examples=[3],
    )
    keep_best_checkpoints: StrictInt = Field(
        default=_D["keep_best_checkpoints"],
        ge=1,
        le=L.MAX_KEEP_CHECKPOINTS,
        description="the checkpoints with the lowest validation loss kept besides the newest",
        examples=[2],
    )
    early_stopping_patience: StrictInt | None = Field(
        default=_D["early_stopping_patience"],
        ge=1,
        le=L.MAX_PATIENCE,
        description="stop after this many evaluations without val_loss improving",
        examples=[5],
    )
    early_stopping_min_delta: StrictFloat = Field(
        default=_D["early_stopping_min_delta"],
        ge=0.0,
        le=L.MAX_MIN_DELTA,
        description="the least decrease of val_loss that counts as improving",
        examples=[0.001],
    )
    grad_norm_alert_max: StrictFloat | None = Field(
        default=_D["grad_norm_alert_max"],
        gt=0.0,
        le=L.MAX_GRAD_NORM_ALERT,
        description="alert (exploding_gradients) when the gradient norm exceeds this",
        examples=[100.0],
    )
    grad_norm_alert_min: StrictFloat | None = Field(
        default=_D["grad_norm_alert_min"],
        gt=0.0,
        le=L.MAX_GRAD_NORM_ALERT,
        description="alert (vanishing_gradients) when the gradient norm falls below this",
        examples=[1e-6],
    )
    val_loss_spike_ratio: StrictFloat | None = Field(
        default=_D["val_loss_spike_ratio"],
        gt=0.0,
        le=L.MAX_SPIKE_RATIO,
        description="alert (val_loss_spike) when val_loss rises this fraction above its best",
        examples=[0.5],
    )
    num_processes: StrictInt = Field(
        default=_D["num_processes"],
        ge=1,
        le=L.MAX_PROCESSES,
        description="processes training together on the worker (DistributedDataParallel), at "
        "most MAX_TRAIN_PROCESSES; each takes an equal share of every batch, so batch_size "
        "must be a multiple of it; no time_budget_s then",
        examples=[2],
    )
    continue_from: StrictStr | None = Field(
        default=None,
        max_length=2 * L.MAX_ID_CHARS,
        description="`run_id@step` (a checkpoint) or `run_id` (its final model) of one of the "
        "caller's runs to start from; same model_family, model_size and tokenizer",
        examples=[f"{EXAMPLE_RUN_ID}@400"],
    )
    timeout_s: TimeoutS = None
    priority: JobPriority = "normal"

    @model_validator(mode="before")
    @classmethod
    def _with_family_defaults(cls, data: object) -> object:
        """Fill each family-dependent option the request leaves out from its family's recipe,
        before the fields are validated (arguments in Python, an object over HTTP)."""
        if isinstance(data, ArgsKwargs):
            kwargs = data.kwargs or {}
            family = data.args[0] if data.args else kwargs.get("model_family")
            return ArgsKwargs(data.args, {**_family_recipe(family), **kwargs})
        if isinstance(data, dict):
            fields = {str(name): value for name, value in data.items()}
            return {**_family_recipe(fields.get("model_family")), **fields}
        return data


_TRAIN_OPTIONS = TypeAdapter(TrainOptions)
_TRAIN_REQUEST = TypeAdapter(TrainJobRequest)


def train_options(fields: Mapping[str, object]) -> TrainOptions:
    """The TrainOptions among a train request's fields (the others are ignored), typed by
    pydantic itself, so no field is copied by hand between the request and the contract."""
    try:
        return _TRAIN_OPTIONS.validate_python(fields)
    except ValidationError as exc:
        raise invalid_fields(exc) from exc


def train_request(fields: Mapping[str, object]) -> TrainJobRequest:
    """A train request built outside HTTP (a study's trial), checked as the route checks one."""
    try:
        return _TRAIN_REQUEST.validate_python(fields)
    except ValidationError as exc:
        raise invalid_fields(exc) from exc


def invalid_fields(exc: ValidationError) -> ModelTrainerError:
    """Pydantic's first complaint as our coded error, naming the field."""
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    return ModelTrainerError("INVALID_CONFIG", f"{field}: {first['msg']}", details={"field": field})


def train_request_options(body: TrainJobRequest) -> TrainOptions:
    # Shallow: dataclasses.asdict deep-copies every value, a tenth of a submission's time.
    return train_options({field.name: getattr(body, field.name) for field in fields(body)})


@dataclass(frozen=True, config=_REQUEST)
class EvalJobRequest:
    """`POST /v1/jobs/eval`: a trained run's loss on a corpus (default: its training corpus)."""

    run_id: RunRef = None
    model: ModelRef = None
    step: Step = None
    corpus_id: CorpusId = None
    corpus_path: CorpusPath = None
    split: EvalSplit = Field(
        default="validation",
        description="validation: the corpus's held-out tail (val_fraction); all: every token",
        examples=["all"],
    )
    val_fraction: StrictFloat = Field(
        default=0.1,
        gt=0.0,
        lt=1.0,
        description="with split validation: the share of the corpus held out",
        examples=[0.05],
    )
    max_seq_len: StrictInt = Field(
        default=128,
        ge=1,
        le=L.MAX_SEQ_LEN,
        description="tokens per window; at most the run's context",
        examples=[256],
    )
    batch_size: StrictInt = Field(
        default=32, ge=1, le=L.MAX_BATCH_SIZE, description="windows per batch", examples=[64]
    )
    max_batches: StrictInt | None = Field(
        default=None,
        ge=1,
        le=L.MAX_EVAL_BATCHES,
        description="evaluate at most this many batches; null: all of them",
        examples=[100],
    )
    timeout_s: TimeoutS = None
    priority: JobPriority = "normal"


@dataclass(frozen=True, config=_REQUEST)
class ScoreJobRequest:
    """`POST /v1/jobs/score`: per-token probabilities of a text (inline or a file)."""

    run_id: RunRef = None
    model: ModelRef = None
    step: Step = None
    text: StrictStr | None = Field(
        default=None,
        max_length=L.MAX_TEXT_CHARS,
        description=f"{_TEXT}; give this or path",
        examples=["To be, or not to be"],
    )
    path: StrictStr | None = Field(
        default=None,
        max_length=L.MAX_PATH_CHARS,
        description=f"{_CORPUS_PATH}; give this or text",
        examples=["hamlet.txt"],
    )
    detail_level: DetailLevel = Field(
        default="summary",
        description="summary: loss, perplexity and surprisal of the whole text; per_char: also "
        "every character's surprisal and its top_k alternatives",
        examples=["per_char"],
    )
    top_k: StrictInt | None = Field(
        default=None,
        ge=1,
        le=L.MAX_SCORE_TOP_K,
        description="with per_char: the most likely alternatives shown per character (default 5)",
        examples=[3],
    )
    seed: StrictInt | None = Field(
        default=None, ge=0, le=L.MAX_SEED, description=_SEED, examples=[1]
    )
    timeout_s: TimeoutS = None
    priority: JobPriority = "normal"


@dataclass(frozen=True, config=_REQUEST)
class GenerateJobRequest:
    """`POST /v1/jobs/generate`: sample continuations of a prompt (inline or a file)."""

    run_id: RunRef = None
    model: ModelRef = None
    step: Step = None
    prompt_text: StrictStr | None = Field(
        default=None,
        max_length=L.MAX_TEXT_CHARS,
        description=f"the prompt, {_TEXT}; give this or prompt_path (or neither: an empty one)",
        examples=["To be, or not"],
    )
    prompt_path: StrictStr | None = Field(
        default=None,
        max_length=L.MAX_PATH_CHARS,
        description=f"the prompt from {_CORPUS_PATH}",
        examples=["prompts/hamlet.txt"],
    )
    max_new_tokens: StrictInt = Field(
        default=100,
        ge=1,
        le=L.MAX_NEW_TOKENS,
        description="tokens to add to the prompt, at most",
        examples=[200],
    )
    temperature: StrictFloat = Field(
        default=1.0,
        gt=0.0,
        le=L.MAX_TEMPERATURE,
        description="divides the logits: below 1 more predictable, above 1 more varied",
        examples=[0.8],
    )
    top_k: StrictInt = Field(
        default=0,
        ge=0,
        le=L.MAX_SAMPLE_TOP_K,
        description="sample among the k most likely tokens; 0: no cut",
        examples=[40],
    )
    top_p: StrictFloat = Field(
        default=1.0,
        gt=0.0,
        le=1.0,
        description="sample among the most likely tokens whose probabilities add up to p; "
        "1: no cut",
        examples=[0.9],
    )
    stop_on_eos: StrictBool = Field(
        default=True,
        description="end a sequence at the end-of-text token",
        examples=[False],
    )
    seed: StrictInt | None = Field(
        default=None, ge=0, le=L.MAX_SEED, description=_SEED, examples=[1]
    )
    num_return_sequences: StrictInt = Field(
        default=1,
        ge=1,
        le=L.MAX_RETURN_SEQUENCES,
        description="continuations to sample, in one batch",
        examples=[3],
    )
    timeout_s: TimeoutS = None
    priority: JobPriority = "normal"


@dataclass(frozen=True, config=_REQUEST)
class ExportJobRequest:
    """`POST /v1/jobs/export`: a finished run as a .tar.gz bundle (Hugging Face files, ONNX,
    a standalone inference.py), downloaded from `GET /v1/jobs/{job_id}/bundle`."""

    run_id: RunRef = None
    model: ModelRef = None
    step: Step = None
    timeout_s: TimeoutS = None
    priority: JobPriority = "normal"


@dataclass(frozen=True, config=_REQUEST)
class TokenizerJobRequest:
    """`POST /v1/jobs/tokenizer`: train a tokenizer on one corpus; its id is in the result."""

    kind: TokenizerKind = Field(
        default="bpe",
        description="bpe: byte-level BPE (Hugging Face tokenizers); char: one token per character",
        examples=["char"],
    )
    corpus_id: CorpusId = None
    corpus_path: CorpusPath = None
    tokenizer_id: StrictStr | None = Field(
        default=None,
        max_length=L.MAX_ID_CHARS,
        description="the new tokenizer's id; default {kind}-{job_id}",
        examples=["bpe-shakespeare"],
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
        examples=[4096],
    )
    timeout_s: TimeoutS = None
    priority: JobPriority = "normal"


@dataclass(frozen=True, config=_REQUEST)
class CreateModelRequest:
    """`POST /v1/models`: a new name in the caller's model registry."""

    name: StrictStr = Field(
        pattern=L.MODEL_NAME_PATTERN,
        description="lowercase letters, digits and `_.-`, up to 64 characters",
        examples=["shakespeare"],
    )
    description: StrictStr = Field(
        default="",
        max_length=L.MAX_DESCRIPTION_CHARS,
        description="what the model is for",
        examples=["a tiny LSTM that writes like Shakespeare"],
    )


@dataclass(frozen=True, config=_REQUEST)
class RegisterVersionRequest:
    """`POST /v1/models/{name}/versions`: the next version, pointing at a finished run of the
    caller's (its final model, or the checkpoint at `step`)."""

    run_id: StrictStr = Field(
        max_length=L.MAX_ID_CHARS,
        description="a finished run of yours",
        examples=[EXAMPLE_RUN_ID],
    )
    step: StrictInt | None = Field(
        default=None,
        ge=0,
        le=L.MAX_STEPS,
        description="a checkpoint's step; default: the final model",
        examples=[400],
    )


@dataclass(frozen=True, config=_REQUEST)
class PromoteRequest:
    """`PUT /v1/models/{name}/aliases/{alias}`: point the alias at a version."""

    version: StrictInt = Field(
        ge=1,
        le=L.MAX_VERSIONS_PER_MODEL,
        description="the version the alias points at from now on",
        examples=[2],
    )
    force: StrictBool = Field(
        default=False,
        description="promote even when its val_loss is worse than the current holder's",
        examples=[True],
    )


_PARAM_NAME = (
    "a train request field: ints "
    + ", ".join(S.INT_FIELDS)
    + "; floats "
    + ", ".join(S.FLOAT_FIELDS)
    + "; categorical also model_size, lr_schedule, precision"
)
_BOUND = "int and float: the range's {} end (inclusive)"


@dataclass(frozen=True, config=_REQUEST)
class ParamRequest:
    """One field of the base request a study tunes: an `int` or `float` range (low..high,
    optionally `log`-uniform or on a `step` grid), or `categorical` choices."""

    name: StrictStr = Field(max_length=64, description=_PARAM_NAME, examples=["learning_rate"])
    type: S.ParamKind = Field(
        description="int or float range, or categorical choices", examples=["float"]
    )
    low: StrictFloat | StrictInt | None = Field(
        default=None, description=_BOUND.format("low"), examples=[1e-4]
    )
    high: StrictFloat | StrictInt | None = Field(
        default=None, description=_BOUND.format("high"), examples=[1e-2]
    )
    step: StrictFloat | StrictInt | None = Field(
        default=None,
        gt=0,
        description="int and float: sample on a grid of this step from low",
        examples=[32],
    )
    log: StrictBool = Field(
        default=False,
        description="int and float: sample uniformly in log space (learning rates)",
        examples=[True],
    )
    choices: list[StrictStr | StrictInt | StrictFloat | StrictBool] | None = Field(
        default=None,
        min_length=1,
        max_length=S.MAX_CHOICES,
        description="categorical: the values to try",
        examples=[["tiny", "small"]],
    )


@dataclass(frozen=True, config=_REQUEST)
class StudyRequest:
    """`POST /v1/studies`: tune a train request with Optuna; every trial is a train job."""

    base: TrainJobRequest = Field(
        description="the train request every trial starts from",
        examples=[
            {
                "model_family": "char_lstm",
                "model_size": "small",
                "corpus_path": "shakespeare.txt",
                "max_steps": 500,
                "val_fraction": 0.1,
                "eval_every_steps": 100,
            }
        ],
    )
    search_space: list[ParamRequest] = Field(
        min_length=1,
        max_length=S.MAX_PARAMS,
        description="the fields each trial sets, and the values they may take",
        examples=[[{"name": "learning_rate", "type": "float", "low": 1e-4, "high": 1e-2}]],
    )
    n_trials: StrictInt = Field(
        ge=1, le=S.MAX_TRIALS, description="trials to run in all", examples=[20]
    )
    name: StrictStr = Field(
        default="",
        max_length=S.MAX_STUDY_NAME_CHARS,
        description="a name to recognise it by",
        examples=["lstm learning rate"],
    )
    sampler: S.SamplerKind = Field(
        default="tpe",
        description="how Optuna picks each trial's values (tpe, random); grid tries every "
        "combination of int ranges and choices",
        examples=["random"],
    )
    parallelism: StrictInt = Field(
        default=1,
        ge=1,
        le=S.MAX_PARALLEL_TRIALS,
        description="trials running at once",
        examples=[2],
    )
    timeout_s: StrictInt | None = Field(
        default=None,
        ge=1,
        le=S.MAX_STUDY_TIMEOUT_S,
        description="no trial starts after this many seconds; running ones finish",
        examples=[3600],
    )
    pruner: S.PrunerKind = Field(
        default="none",
        description="median: stop a trial whose val_loss at a step is worse than the median of "
        "earlier trials' at that step (needs base.eval_every_steps)",
        examples=["median"],
    )
    pruner_startup_trials: StrictInt = Field(
        default=5,
        ge=0,
        le=S.MAX_TRIALS,
        description="trials that finish before any is pruned",
        examples=[3],
    )
    pruner_warmup_steps: StrictInt = Field(
        default=0,
        ge=0,
        le=L.MAX_STEPS,
        description="steps of a trial before it may be pruned",
        examples=[100],
    )
    metric: Literal["val_loss"] = Field(
        default="val_loss",
        description="minimised: each trial's best val_loss",
        examples=["val_loss"],
    )
    seed: StrictInt = Field(
        default=0, ge=0, le=L.MAX_SEED, description="the sampler's seed", examples=[7]
    )


@dataclass(frozen=True, config=_REQUEST)
class CreateScheduleRequest:
    """`POST /v1/schedules`: submit `request` as a `job_type` job on a cron expression or every
    `interval_s` seconds, as the caller (README, "Schedules")."""

    job_type: JobType = Field(description="the kind of job each firing submits", examples=["train"])
    request: dict[str, JSONValue] = Field(
        description="the body `POST /v1/jobs/{job_type}` takes; checked now, and submitted "
        "afresh at every firing (train: no run_id, tokenizer: no tokenizer_id, since each "
        "firing makes a new one)",
        examples=[{"model_family": "char_lstm", "model_size": "tiny", "corpus_path": "notes.txt"}],
    )
    cron: StrictStr | None = Field(
        default=None,
        max_length=L.MAX_CRON_CHARS,
        description="`minute hour day-of-month month day-of-week` in the scheduler's time zone "
        "(UTC under compose); give this or interval_s",
        examples=["0 3 * * *"],
    )
    interval_s: StrictInt | None = Field(
        default=None,
        ge=1,
        le=L.MAX_SCHEDULE_INTERVAL_S,
        description="fire every this many seconds, the first time one interval after creation; "
        "at least MIN_SCHEDULE_INTERVAL_S (settings)",
        examples=[3600],
    )
    name: StrictStr | None = Field(
        default=None,
        max_length=L.MAX_SCHEDULE_NAME_CHARS,
        description="a name to recognise it by",
        examples=["nightly"],
    )


# Path and query parameters that several routers share.
JobId = Annotated[
    str, Path(description="the job's id, as its submission answered", examples=[EXAMPLE_JOB_ID])
]
RunId = Annotated[
    str, Path(description="a run's id (a train job's `run_id`)", examples=[EXAMPLE_RUN_ID])
]
WaitS = Annotated[
    float,
    Query(
        ge=0.0,
        le=L.MAX_WAIT_S,
        allow_inf_nan=False,
        description="seconds to hold the answer while the job has not ended (long polling); "
        "0 answers at once",
        examples=[10.0],
    ),
]
AdminUserId = Annotated[
    int | None,
    Query(
        ge=0,
        le=2**53,
        description="admin keys only: another user's id, to read theirs instead of your own",
        examples=[2],
    ),
]
