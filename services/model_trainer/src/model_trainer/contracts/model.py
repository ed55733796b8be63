"""Configs, outcomes and Protocols every backend shares (seed 004 phases 1, 2 and 6).

Everything here is a TypedDict or a Protocol: configs and outcomes cross process boundaries as
JSON, so they stay plain data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Literal, NotRequired, Protocol, Self

from typing_extensions import TypedDict

from model_trainer.contracts.tokenizer import TokenizerHandle

if TYPE_CHECKING:
    from torch import Tensor, device
    from torch.nn import Parameter

ModelFamily = Literal["char_lstm", "gpt2"]
DeviceChoice = Literal["auto", "cpu", "cuda", "mps"]
Precision = Literal["auto", "fp32", "bf16"]
LRSchedule = Literal["constant", "cosine"]
DetailLevel = Literal["summary", "per_char"]
EvalSplit = Literal["validation", "all"]
# Why a training ended: its planned steps ran, its time budget ran out, or validation loss
# stopped improving for `early_stopping_patience` evaluations.
# pruned: a study's pruner judged the trial hopeless against the study's other trials.
StopReason = Literal["completed", "time_budget", "early_stopping", "pruned"]
STOP_REASONS: tuple[StopReason, ...] = ("completed", "time_budget", "early_stopping", "pruned")
AlertKind = Literal["exploding_gradients", "vanishing_gradients", "val_loss_spike"]

MODEL_FAMILIES: tuple[ModelFamily, ...] = ("char_lstm", "gpt2")


class TrainOutcome(TypedDict):
    """What a finished training reports; stored as the train job's result."""

    loss: float
    perplexity: float
    val_loss: float | None
    val_perplexity: float | None
    steps: int
    epochs_completed: int
    tokens_seen: int
    tokens_per_second: float
    elapsed_s: float
    resumed_from_step: int | None
    out_dir: str
    stop_reason: StopReason
    # The evaluation with the lowest validation loss (None without a validation split).
    best_val_loss: float | None
    best_step: int | None


class EvalConfig(TypedDict):
    """Which text to measure a trained model's loss on."""

    corpus_path: str
    split: EvalSplit
    val_fraction: float
    max_seq_len: int
    batch_size: int
    max_batches: int | None


class EvalOutcome(TypedDict):
    loss: float
    perplexity: float
    tokens: int


class ScoreConfig(TypedDict):
    text: str | None
    path: str | None
    detail_level: DetailLevel
    top_k: int | None
    seed: int | None


class TokenAlternative(TypedDict):
    token: str
    prob: float


class TokenScore(TypedDict):
    """One scored token: for the character tokenizer, one character of the text.

    `start`/`end` (where a backend gives them) are the [start, end) character offsets of the
    token in the scored text; a character split over several byte-level tokens gives each of
    them its span.
    """

    token: str
    prob: float
    surprisal: float
    top_k: list[TokenAlternative]
    start: NotRequired[int]
    end: NotRequired[int]


class ScoreOutcome(TypedDict):
    loss: float
    perplexity: float
    num_tokens: int
    per_token: list[TokenScore] | None


class GenerateConfig(TypedDict):
    prompt_text: str | None
    prompt_path: str | None
    max_new_tokens: int
    temperature: float
    top_k: int
    top_p: float
    stop_on_eos: bool
    seed: int | None
    num_return_sequences: int


class GenerateOutcome(TypedDict):
    outputs: list[str]
    new_tokens: list[int]
    finished_on_eos: list[bool]


class ModelArtifact(TypedDict):
    out_dir: str
    weights_path: str
    manifest_path: str


class BackendCapabilities(TypedDict):
    """What a backend can do, known without importing it."""

    supports_train: bool
    supports_evaluate: bool
    supports_score: bool
    supports_generate: bool
    supports_distributed: bool
    supported_sizes: tuple[str, ...]


class Decoder(Protocol):
    """One decoding session: feed token ids (batch, n) and get their logits (batch, n, vocab).

    It keeps what it was fed (an LSTM's state, a transformer's KV cache), so generation feeds
    one new token per call.
    """

    def __call__(self, input_ids: Tensor) -> Tensor: ...


class LMModelProto(Protocol):
    """A causal language model: token ids in, next-token logits out."""

    model_size: str

    @property
    def context(self) -> int | None:
        """The longest input the model takes; None when it has no limit (a recurrent net)."""
        ...

    @property
    def vocab_size(self) -> int: ...

    @property
    def max_seq_len(self) -> int:
        """The sequence length it was built for: its context, or its training windows'."""
        ...

    def __call__(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor: ...

    def decoder(self) -> Decoder: ...

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]: ...

    def train(self, mode: bool = True) -> Self: ...

    def eval(self) -> Self: ...

    def to(self, device: device) -> Self: ...


class PreparedLMModel(TypedDict):
    """A model with its tokenizer, ready for training or inference."""

    model: LMModelProto
    model_family: ModelFamily
    model_size: str
    tokenizer: TokenizerHandle
    tokenizer_id: str
    eos_id: int
    pad_id: int
    max_seq_len: int


class StepMetrics(TypedDict):
    """Reported to the progress callback at each log interval."""

    epoch: int
    step: int
    total_steps: int
    loss: float
    learning_rate: float
    # Mean global L2 norm of the gradients (before clipping) over the steps since the last
    # report; read in the same device sync as the loss.
    grad_norm: float
    tokens_per_second: float
    elapsed_s: float


class ValidationMetrics(StepMetrics):
    """Reported to the evaluation callback after each validation: the report at that step
    (evaluations always follow one) and the validation loss measured there."""

    val_loss: float


class TrainingAlert(TypedDict):
    """A sign of an unhealthy run (seed 000's GradientMonitor and alerts): raised once when
    a threshold is crossed, again only after the value came back within it."""

    kind: AlertKind
    step: int
    value: float
    threshold: float
    message: str


# Asked between steps of inference (tokens, windows, batches): true means stop now. Cheap
# enough to ask every step (JobContext throttles its Redis read).
StopCheck = Callable[[], bool]


class TrainingCallbacks(TypedDict):
    """Plain callables the loop calls; the loop owns how often."""

    heartbeat: Callable[[float], None]
    cancelled: Callable[[], bool]
    progress: Callable[[StepMetrics], None] | None
    # After each validation (rare: per epoch or eval_every_steps), never throttled.
    evaluated: NotRequired[Callable[[ValidationMetrics], None]]
    alert: Callable[[TrainingAlert], None] | None
    # `(step, val_loss) -> stop?` after each validation: a study's trial reports to its pruner.
    prune: Callable[[int, float], bool] | None
