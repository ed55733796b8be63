"""`Authorization: Bearer <key>` on every /v1 route: who is asking, as a Principal.

The key is checked against its stored hash on each request (one awaited Redis read), so a
revoked key fails at once. The train submission, the API's hot route, reads a key only the
first time this process sees it and caches who it is (a key's user and admin flag never
change); the submission script then checks the key's hash in the same round trip that writes
the job, so a revoked key still writes nothing and is refused with the same 401. Missing,
malformed, unknown and revoked keys get the same 401, so a caller learns nothing about which
keys exist. OpenAPI declares the scheme (HTTPBearer), so clients and fuzzers know to send it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypedDict

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


# Keys whose principal one API process keeps for the train submission; past it, it starts over.
KNOWN_KEYS_LIMIT = 10_000


class CachedCaller(TypedDict):
    """Who a train submission acts as, and the key the submission script checks again."""

    principal: Principal
    key: str


def cached_key_checker(
    batch: PipelineBatch, known: dict[str, Principal]
) -> Callable[[Request, HTTPAuthorizationCredentials | None], Awaitable[CachedCaller]]:
    """The train submission's dependency: `known` maps the keys this process has checked to
    their principals; the route forgets a key the script refused."""

    async def caller(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> CachedCaller:
        key = "" if credentials is None else credentials.credentials
        principal = known.get(key)
        if principal is None:
            principal = await authenticate_async(batch, key) if key else None
            if principal is None:
                raise unauthenticated()
            if len(known) >= KNOWN_KEYS_LIMIT:
                known.clear()
            known[key] = principal
        request.state.user_id = principal["user_id"]
        return {"principal": principal, "key": key}

    return caller
