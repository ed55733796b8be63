"""Error codes of the model trainer and the one table giving each its HTTP status and kind."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, NamedTuple

from platform_core.errors import AppError
from platform_core.json_types import JSONObject

if TYPE_CHECKING:
    # Only a type: errors sit below contracts, which may raise them.
    from model_trainer.contracts.jobs import ErrorKind

ModelTrainerErrorCode = Literal[
    # Configuration and requests
    "INVALID_CONFIG",
    "UNSUPPORTED_VALUE",
    "JOB_NOT_FOUND",
    "JOB_ALREADY_FINISHED",
    "JOB_NOT_COMPLETED",
    "JOB_TIMEOUT",
    "REQUEST_TOO_LARGE",
    "ROUTE_NOT_FOUND",
    "METHOD_NOT_ALLOWED",
    # Keys and limits
    "UNAUTHENTICATED",
    "QUOTA_EXCEEDED",
    "QUEUE_FULL",
    # Training
    "TRAINING_CANCELLED",
    "TRAINING_PREEMPTED",
    "TRAINING_OOM",
    "TRAINING_NAN_LOSS",
    "TRAINING_DIVERGED",
    "TRAINING_PROCESS_FAILED",
    # Models and runs
    "MODEL_NOT_FOUND",
    "CHECKPOINT_NOT_FOUND",
    "STUDY_NOT_FOUND",
    "STUDY_ENDED",
    "MODEL_EXISTS",
    "PROMOTION_REFUSED",
    "ALIAS_NO_HISTORY",
    "MODEL_LOAD_FAILED",
    "MODEL_INCOMPATIBLE",
    "ARTIFACT_CORRUPT",
    "EXPORT_FAILED",
    "INVALID_MODEL_SIZE",
    "UNKNOWN_MODEL_FAMILY",
    # Tokenizers
    "TOKENIZER_NOT_FOUND",
    "TOKENIZER_LOAD_FAILED",
    "TOKENIZER_TRAIN_FAILED",
    # Corpora
    "CORPUS_NOT_FOUND",
    "CORPUS_EMPTY",
    "CORPUS_TOO_LARGE",
    "PATH_OUTSIDE_ROOT",
    "INVALID_PATH",
    # Infrastructure
    "INTERNAL_ERROR",
    "RESOURCE_EXHAUSTED",
    "REDIS_UNAVAILABLE",
    "WORKER_LOST",
    "CUDA_NOT_AVAILABLE",
    "NO_CUDA_WORKER",
    "CUDA_OOM",
    "ARTIFACT_UPLOAD_FAILED",
    "ARTIFACT_DOWNLOAD_FAILED",
    # Schedules
    "SCHEDULE_NOT_FOUND",
]


class ErrorSpec(NamedTuple):
    """What a code means outside its message: the HTTP status, and whose fault it is."""

    status: int
    kind: ErrorKind


# Kind never follows from status: TRAINING_CANCELLED never reaches HTTP (its 499 only keeps the
# table total) and is the user's doing; out-of-memory is neither the user's nor a bug.
ERRORS: dict[ModelTrainerErrorCode, ErrorSpec] = {
    "INVALID_CONFIG": ErrorSpec(422, "user"),
    "JOB_NOT_FOUND": ErrorSpec(404, "user"),
    # A value the validators let through but the worker could not compute with (an overflow).
    "UNSUPPORTED_VALUE": ErrorSpec(422, "user"),
    "JOB_ALREADY_FINISHED": ErrorSpec(409, "user"),
    # What only a completed job has (an export's bundle) was asked of one still under way or
    # ended otherwise.
    "JOB_NOT_COMPLETED": ErrorSpec(409, "user"),
    # The job ran past its wall-clock limit (per type in settings, or lower per request).
    "JOB_TIMEOUT": ErrorSpec(504, "resource"),
    # No route has this path, or the path has no such method.
    "ROUTE_NOT_FOUND": ErrorSpec(404, "user"),
    "METHOD_NOT_ALLOWED": ErrorSpec(405, "user"),
    # A request body past the API's size limit, refused before it is parsed.
    "REQUEST_TOO_LARGE": ErrorSpec(413, "user"),
    # No API key, or one that does not exist (never says which).
    "UNAUTHENTICATED": ErrorSpec(401, "user"),
    # The user's own limit (jobs queued or running, stored corpus bytes): wait, or free some.
    "QUOTA_EXCEEDED": ErrorSpec(429, "user"),
    # Every user's jobs together fill the queue: the service is busy, not the caller at fault.
    "QUEUE_FULL": ErrorSpec(503, "resource"),
    "TRAINING_CANCELLED": ErrorSpec(499, "user"),
    # Its worker is shutting down: the training checkpointed and went back to the queue. Never
    # a final state (the job is requeued), so its status only keeps the table total.
    "TRAINING_PREEMPTED": ErrorSpec(503, "system"),
    "TRAINING_OOM": ErrorSpec(507, "resource"),
    # The recipe (learning rate, clipping) diverged: the user's to change, never retried.
    "TRAINING_NAN_LOSS": ErrorSpec(500, "user"),
    "TRAINING_DIVERGED": ErrorSpec(500, "user"),
    # One process of a multi-process training died or stopped answering; the others were
    # stopped with it (never left waiting).
    "TRAINING_PROCESS_FAILED": ErrorSpec(500, "system"),
    "MODEL_NOT_FOUND": ErrorSpec(404, "user"),
    # `run@step` names a step the run kept no checkpoint of (never taken, or retired by
    # retention).
    "CHECKPOINT_NOT_FOUND": ErrorSpec(404, "user"),
    "STUDY_NOT_FOUND": ErrorSpec(404, "user"),
    "STUDY_ENDED": ErrorSpec(409, "user"),
    # The registry: a model name the caller already uses; a promotion the val-loss gate
    # refused (force overrides it); a rollback of an alias that never moved.
    "MODEL_EXISTS": ErrorSpec(409, "user"),
    "PROMOTION_REFUSED": ErrorSpec(409, "user"),
    "ALIAS_NO_HISTORY": ErrorSpec(409, "user"),
    "MODEL_LOAD_FAILED": ErrorSpec(500, "system"),
    "MODEL_INCOMPATIBLE": ErrorSpec(400, "user"),
    # An artifact whose bytes differ from the sha256 its manifest recorded (tampered, truncated):
    # never loaded.
    "ARTIFACT_CORRUPT": ErrorSpec(500, "system"),
    # A trained model the ONNX exporter could not trace or whose graph failed its check.
    "EXPORT_FAILED": ErrorSpec(500, "system"),
    "INVALID_MODEL_SIZE": ErrorSpec(400, "user"),
    "UNKNOWN_MODEL_FAMILY": ErrorSpec(400, "user"),
    "TOKENIZER_NOT_FOUND": ErrorSpec(404, "user"),
    "TOKENIZER_LOAD_FAILED": ErrorSpec(500, "system"),
    "TOKENIZER_TRAIN_FAILED": ErrorSpec(500, "system"),
    "CORPUS_NOT_FOUND": ErrorSpec(404, "user"),
    "CORPUS_EMPTY": ErrorSpec(400, "user"),
    "CORPUS_TOO_LARGE": ErrorSpec(413, "user"),
    "PATH_OUTSIDE_ROOT": ErrorSpec(400, "user"),
    # Not a path at all (a NUL byte in it).
    "INVALID_PATH": ErrorSpec(400, "user"),
    "INTERNAL_ERROR": ErrorSpec(500, "system"),
    # Out of memory (host or device) or out of disk: the same request fails the same way.
    "RESOURCE_EXHAUSTED": ErrorSpec(507, "resource"),
    # Redis did not answer in time; the API says so and recovers once it is back.
    "REDIS_UNAVAILABLE": ErrorSpec(503, "system"),
    # The job's worker died (or RQ dropped the job) and no retry is left: found by reconciling
    # our records with RQ's registries.
    "WORKER_LOST": ErrorSpec(500, "system"),
    "CUDA_NOT_AVAILABLE": ErrorSpec(503, "resource"),
    # A job that needs CUDA was submitted while no live worker listens on its CUDA queue.
    "NO_CUDA_WORKER": ErrorSpec(503, "resource"),
    "CUDA_OOM": ErrorSpec(507, "resource"),
    "ARTIFACT_UPLOAD_FAILED": ErrorSpec(502, "system"),
    "ARTIFACT_DOWNLOAD_FAILED": ErrorSpec(502, "system"),
    # A schedule id that is not one of the caller's (deleted, never made, or another user's).
    "SCHEDULE_NOT_FOUND": ErrorSpec(404, "user"),
}


QUOTE_LIMIT = 64


def quoted(value: object, limit: int = QUOTE_LIMIT) -> str:
    """A refused value as an error message shows it: its repr, cut to a short prefix, so a
    10 MB field is never echoed back whole."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class ModelTrainerError(AppError[ModelTrainerErrorCode]):
    """An error whose status and kind always come from ERRORS, so callers name only the code."""

    def __init__(
        self,
        code: ModelTrainerErrorCode,
        message: str,
        *,
        details: JSONObject | None = None,
    ) -> None:
        spec = ERRORS[code]
        super().__init__(code, message, http_status=spec.status, details=details)
        self.kind: ErrorKind = spec.kind
