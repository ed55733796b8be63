"""Exception handlers: every refused request gets the body `{"error": {code, message, details}}`.

Unknown routes and wrong methods are ROUTE_NOT_FOUND (404) and METHOD_NOT_ALLOWED (405, with
its Allow header); everything a client got wrong about a known route (bad values, wrong JSON
types, malformed JSON, extra fields) is INVALID_CONFIG (422) naming the first bad field, or the
code a validator chose. Redis out of reach is REDIS_UNAVAILABLE (503, with Retry-After); the
client retries and the API recovers by itself once Redis answers. Anything else is
INTERNAL_ERROR (500), never a bare 500.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from redis.exceptions import BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException

from model_trainer.api.http_metrics import route_template
from model_trainer.errors import ModelTrainerError, ModelTrainerErrorCode, quoted
from platform_core.json_types import ROOT_FIELD
from platform_core.structured_logs import FIELDS_ATTR

logger = logging.getLogger(__name__)

# FastAPI answers 400 only when it cannot decode a body at all (e.g. invalid UTF-8 in JSON).
_UNPARSABLE_BODY = 400
_METHOD_NOT_ALLOWED = 405
_SERVER_ERROR = 500
# Redis restarts take seconds: ask clients to come back after a few.
RETRY_AFTER_S = 5
# A full queue or a user's job limit frees up as jobs finish: inference jobs take seconds.
QUOTA_RETRY_AFTER_S = 10


# Headers some refusals carry: how to authenticate, and when to come back.
REFUSAL_HEADERS: dict[ModelTrainerErrorCode, dict[str, str]] = {
    "UNAUTHENTICATED": {"WWW-Authenticate": "Bearer"},
    "QUOTA_EXCEEDED": {"Retry-After": str(QUOTA_RETRY_AFTER_S)},
    "QUEUE_FULL": {"Retry-After": str(QUOTA_RETRY_AFTER_S)},
    "NO_CUDA_WORKER": {"Retry-After": str(QUOTA_RETRY_AFTER_S)},
    "REDIS_UNAVAILABLE": {"Retry-After": str(RETRY_AFTER_S)},
}


def error_response(error: ModelTrainerError) -> JSONResponse:
    headers = REFUSAL_HEADERS.get(error.code)
    return JSONResponse(status_code=error.http_status, content=error.to_body(), headers=headers)


def validation_error(exc: RequestValidationError) -> ModelTrainerError:
    """The first problem pydantic or the JSON parser found, as INVALID_CONFIG naming its field."""
    first = exc.errors()[0]
    if first["type"] == "json_invalid":
        return ModelTrainerError(
            "INVALID_CONFIG",
            f"request body is not valid JSON: {first['ctx']['error']}",
            details={"field": ROOT_FIELD},
        )
    # loc starts with where the value came from ("body", "query", "path", "header").
    field = ".".join(str(part) for part in first["loc"][1:]) or ROOT_FIELD
    return ModelTrainerError("INVALID_CONFIG", f"{field}: {first['msg']}", details={"field": field})


def redis_unavailable(exc: Exception) -> ModelTrainerError:
    return ModelTrainerError(
        "REDIS_UNAVAILABLE",
        f"the job store is unreachable ({type(exc).__name__}); retry in {RETRY_AFTER_S} s",
    )


def internal_error(exc: Exception) -> ModelTrainerError:
    """The one shape even for our own bugs; the message names the exception, not its data."""
    return ModelTrainerError("INTERNAL_ERROR", f"internal error ({type(exc).__name__})")


def route_error(request: Request, exc: HTTPException) -> ModelTrainerError:
    """What FastAPI and Starlette raise themselves: an undecodable body, a route or a method
    that does not exist. Nothing else raises HTTPException here."""
    if exc.status_code == _UNPARSABLE_BODY:
        return ModelTrainerError(
            "INVALID_CONFIG",
            f"request body could not be decoded: {exc.detail}",
            details={"field": ROOT_FIELD},
        )
    where = f"{request.method} {quoted(request.url.path)}"
    if exc.status_code == _METHOD_NOT_ALLOWED:
        return ModelTrainerError("METHOD_NOT_ALLOWED", f"no route for {where}")
    return ModelTrainerError("ROUTE_NOT_FOUND", f"no route for {where}")


def refused(
    request: Request, error: ModelTrainerError, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The error body, and one log line saying which route refused whom, and why. Our own
    bugs are logged with their traceback by uvicorn, which sees the exception next."""
    user_id = getattr(request.state, "user_id", None)
    fields = {
        "event": "request.refused",
        "code": error.code,
        "status": error.http_status,
        "method": request.method,
        "route": route_template(request.scope),
        "user_id": user_id if isinstance(user_id, int) else None,
    }
    level = logging.INFO if error.http_status < _SERVER_ERROR else logging.WARNING
    logger.log(level, "refused: %s: %s", error.code, error.message, extra={FIELDS_ATTR: fields})
    response = error_response(error)
    response.headers.update(headers or {})
    return response


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ModelTrainerError)
    async def on_app_error(request: Request, exc: ModelTrainerError) -> JSONResponse:
        return refused(request, exc)

    @app.exception_handler(RequestValidationError)
    async def on_invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return refused(request, validation_error(exc))

    @app.exception_handler(RedisConnectionError)
    @app.exception_handler(RedisTimeoutError)
    @app.exception_handler(BusyLoadingError)
    async def on_redis_unreachable(request: Request, exc: Exception) -> JSONResponse:
        return refused(request, redis_unavailable(exc))

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        return refused(request, internal_error(exc))

    @app.exception_handler(HTTPException)
    async def on_http_error(request: Request, exc: HTTPException) -> Response:
        return refused(request, route_error(request, exc), exc.headers)
