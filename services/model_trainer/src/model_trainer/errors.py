"""Error codes of the model trainer and the one table mapping them to HTTP statuses."""

from __future__ import annotations

from typing import Literal

from platform_core.errors import AppError
from platform_core.json_types import JSONObject

ModelTrainerErrorCode = Literal[
    # Configuration and requests
    "INVALID_CONFIG",
    "JOB_NOT_FOUND",
    "JOB_ALREADY_FINISHED",
    # Training
    "TRAINING_CANCELLED",
    "TRAINING_OOM",
    "TRAINING_NAN_LOSS",
    "TRAINING_DIVERGED",
    # Models and runs
    "MODEL_NOT_FOUND",
    "MODEL_LOAD_FAILED",
    "MODEL_INCOMPATIBLE",
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
    # Infrastructure
    "INTERNAL_ERROR",
    "CUDA_NOT_AVAILABLE",
    "CUDA_OOM",
    "ARTIFACT_UPLOAD_FAILED",
    "ARTIFACT_DOWNLOAD_FAILED",
]

ERROR_STATUS: dict[ModelTrainerErrorCode, int] = {
    "INVALID_CONFIG": 422,
    "JOB_NOT_FOUND": 404,
    "JOB_ALREADY_FINISHED": 409,
    "TRAINING_CANCELLED": 499,
    "TRAINING_OOM": 507,
    "TRAINING_NAN_LOSS": 500,
    "TRAINING_DIVERGED": 500,
    "MODEL_NOT_FOUND": 404,
    "MODEL_LOAD_FAILED": 500,
    "MODEL_INCOMPATIBLE": 400,
    "INVALID_MODEL_SIZE": 400,
    "UNKNOWN_MODEL_FAMILY": 400,
    "TOKENIZER_NOT_FOUND": 404,
    "TOKENIZER_LOAD_FAILED": 500,
    "TOKENIZER_TRAIN_FAILED": 500,
    "CORPUS_NOT_FOUND": 404,
    "CORPUS_EMPTY": 400,
    "CORPUS_TOO_LARGE": 413,
    "PATH_OUTSIDE_ROOT": 400,
    "INTERNAL_ERROR": 500,
    "CUDA_NOT_AVAILABLE": 503,
    "CUDA_OOM": 507,
    "ARTIFACT_UPLOAD_FAILED": 502,
    "ARTIFACT_DOWNLOAD_FAILED": 502,
}


class ModelTrainerError(AppError[ModelTrainerErrorCode]):
    """An error whose HTTP status always comes from ERROR_STATUS, so callers name only the code."""

    def __init__(
        self,
        code: ModelTrainerErrorCode,
        message: str,
        *,
        details: JSONObject | None = None,
    ) -> None:
        super().__init__(code, message, http_status=ERROR_STATUS[code], details=details)
