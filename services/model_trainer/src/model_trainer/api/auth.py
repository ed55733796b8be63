"""`Authorization: Bearer <key>` on every /v1 route: who is asking, as a Principal.

The key is checked against its stored hash on each request (one awaited Redis read), so a
revoked key fails at once. Missing, malformed, unknown and revoked keys get the same 401, so a
caller learns nothing about which keys exist. OpenAPI declares the scheme (HTTPBearer), so
clients and fuzzers know to send it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from model_trainer.errors import ModelTrainerError
from model_trainer.storage.api_keys import Principal, authenticate_async
from platform_workers.redis_batch import PipelineBatch

BEARER = HTTPBearer(
    auto_error=False, description="an API key from `model-trainer keys create --user NAME`"
)


def unauthenticated() -> ModelTrainerError:
    return ModelTrainerError(
        "UNAUTHENTICATED",
        "a valid API key is required: send `Authorization: Bearer <key>`",
    )


def key_checker(
    batch: PipelineBatch,
) -> Callable[[Request, HTTPAuthorizationCredentials | None], Awaitable[Principal]]:
    """The dependency every /v1 route takes (`caller: Principal = Depends(...)`): its one read
    is awaited on the event loop, so checking a key costs no thread."""

    async def caller(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> Principal:
        principal = (
            None
            if credentials is None
            else await authenticate_async(batch, credentials.credentials)
        )
        if principal is None:
            raise unauthenticated()
        # Who is asking, for the line that logs a refusal.
        request.state.user_id = principal["user_id"]
        return principal

    return caller
