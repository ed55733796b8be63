"""What /openapi.json says beyond the routes' signatures: the coded refusals each route may
answer with, and readable operation ids.

Each route lists the codes its code can raise (`refusals`); they are grouped by the HTTP status
ERRORS gives them, and every one is documented with the one error body (`ErrorBody`) and an
example per code, so a client can read which codes to expect at each status. The fuzz test
checks every refusal it provokes against this list.
"""

from __future__ import annotations

from fastapi.routing import APIRoute

from model_trainer.api.errors import REFUSAL_HEADERS
from model_trainer.errors import ERRORS, ModelTrainerErrorCode
from platform_core.errors import ErrorBody

Responses = dict[int | str, dict[str, object]]

# What each code a client can receive means, in a line (codes only workers produce, such as
# TRAINING_NAN_LOSS, reach clients in job records, not as HTTP refusals).
MEANINGS: dict[ModelTrainerErrorCode, str] = {
    "INVALID_CONFIG": "a value is missing, malformed, out of range or in conflict with another; "
    "details.field names it",
    "UNKNOWN_MODEL_FAMILY": "model_family is none of the families this service trains",
    "INVALID_MODEL_SIZE": "model_size is not a size the family offers",
    "UNAUTHENTICATED": "no API key, or one that is malformed, unknown or revoked",
    "QUOTA_EXCEEDED": "your own limit (active jobs per queue, corpus bytes, models, schedules, "
    "studies) is reached: wait, or free some",
    "QUEUE_FULL": "the queue holds MAX_QUEUE_DEPTH jobs: the service is busy, retry later",
    "NO_CUDA_WORKER": "device cuda was asked for and no CUDA worker is running: start one, "
    "retry later, or use device auto",
    "REQUEST_TOO_LARGE": "the body, a text or a file it names is over its size limit",
    "REDIS_UNAVAILABLE": "the job store is out of reach; retry after Retry-After seconds",
    "INTERNAL_ERROR": "a bug: the message names the exception, never its data",
    "JOB_NOT_FOUND": "no job of yours has this id",
    "JOB_ALREADY_FINISHED": "the job already ended (completed, failed or cancelled)",
    "JOB_NOT_COMPLETED": "the job has not completed (yet), so it has no bundle",
    "MODEL_NOT_FOUND": "no finished run, model, version or alias of yours has this name",
    "CHECKPOINT_NOT_FOUND": "the run keeps no checkpoint at this step",
    "MODEL_INCOMPATIBLE": "the run or checkpoint to start from does not fit this request "
    "(family, size, tokenizer or vocabulary)",
    "MODEL_LOAD_FAILED": "a stored run's manifest or metrics could not be read",
    "MODEL_EXISTS": "you already have a model of this name",
    "PROMOTION_REFUSED": "the version's val_loss is worse than the alias holder's (force "
    "overrides)",
    "ALIAS_NO_HISTORY": "the alias never pointed at another version",
    "ARTIFACT_CORRUPT": "a stored file differs from what its manifest recorded",
    "TOKENIZER_NOT_FOUND": "no tokenizer of yours has this id",
    "CORPUS_NOT_FOUND": "no corpus of yours (or file under DATA_ROOT) has this id or path",
    "CORPUS_EMPTY": "the corpus holds no text",
    "CORPUS_TOO_LARGE": "the corpus is over MAX_CORPUS_BYTES",
    "PATH_OUTSIDE_ROOT": "the path leads outside the directories it may name",
    "INVALID_PATH": "not a path (a NUL byte in it)",
    "STUDY_NOT_FOUND": "no study of yours has this id",
    "STUDY_ENDED": "the study already ended",
    "SCHEDULE_NOT_FOUND": "no schedule of yours has this id",
}

# Every route: even a bug answers in the error body.
EVERY_ROUTE: tuple[ModelTrainerErrorCode, ...] = ("INTERNAL_ERROR",)
# Every route behind a key, with parameters or a body, reading Redis.
KEYED_ROUTE: tuple[ModelTrainerErrorCode, ...] = (
    "UNAUTHENTICATED",
    "INVALID_CONFIG",
    "REDIS_UNAVAILABLE",
)
# What any job submission (and a schedule, which is checked as one) may be refused with.
SUBMISSION: tuple[ModelTrainerErrorCode, ...] = (
    "REQUEST_TOO_LARGE",
    "QUOTA_EXCEEDED",
    "QUEUE_FULL",
)
# Reading a stored run (its manifest) or a text or corpus file.
RUN_READ: tuple[ModelTrainerErrorCode, ...] = (
    "MODEL_NOT_FOUND",
    "CHECKPOINT_NOT_FOUND",
    "MODEL_LOAD_FAILED",
)
FILE_READ: tuple[ModelTrainerErrorCode, ...] = (
    "CORPUS_NOT_FOUND",
    "CORPUS_EMPTY",
    "CORPUS_TOO_LARGE",
    "PATH_OUTSIDE_ROOT",
    "INVALID_PATH",
)


def refusals(*codes: ModelTrainerErrorCode, keyed: bool = True) -> Responses:
    """The error responses of a route that may refuse with `codes` (plus what every route, and
    every keyed route, may): one per HTTP status, each listing its codes."""
    chosen = [*EVERY_ROUTE, *(KEYED_ROUTE if keyed else ()), *codes]
    by_status: dict[int, list[ModelTrainerErrorCode]] = {}
    for code in dict.fromkeys(chosen):
        by_status.setdefault(ERRORS[code].status, []).append(code)
    return {status: _refusal(by_status[status]) for status in sorted(by_status)}


def _refusal(codes: list[ModelTrainerErrorCode]) -> dict[str, object]:
    listed = "\n".join(f"- `{code}`: {MEANINGS[code]}" for code in codes)
    examples = {
        code: {
            "summary": MEANINGS[code],
            "value": {"error": {"code": code, "message": MEANINGS[code], "details": {}}},
        }
        for code in codes
    }
    response: dict[str, object] = {
        "model": ErrorBody,
        "description": f"The error body; `error.code` is one of:\n\n{listed}",
        "content": {"application/json": {"examples": examples}},
    }
    sent_with: dict[str, list[ModelTrainerErrorCode]] = {}
    for code in codes:
        for name in REFUSAL_HEADERS.get(code, {}):
            sent_with.setdefault(name, []).append(code)
    if sent_with:
        response["headers"] = {
            name: {"description": f"sent with {', '.join(sent)}", "schema": {"type": "string"}}
            for name, sent in sent_with.items()
        }
    return response


def operation_id(route: APIRoute) -> str:
    """The handler's name in camelCase (`submit_train_job` -> `submitTrainJob`), for clients
    generated from the document."""
    first, *rest = route.name.split("_")
    return first + "".join(word.capitalize() for word in rest)
