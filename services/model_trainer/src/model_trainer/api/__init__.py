"""The HTTP API: validates, records, enqueues and reads; all model work happens in workers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypedDict

from fastapi import Request
from fastapi.security import HTTPAuthorizationCredentials

from model_trainer.api.event_hub import EventHub
from model_trainer.settings import Settings
from model_trainer.storage.api_keys import Principal
from model_trainer.storage.job_store import JobStore
from platform_workers.redis_batch import PipelineBatch
from platform_workers.redis_conn import RedisClient


class SubmitContext(TypedDict):
    """What submitting a job needs: also built outside the API, by the scheduler firing a
    schedule and by a study asking for its next trial, so both pass the same checks."""

    settings: Settings
    redis: RedisClient
    jobs: JobStore


class ApiContext(SubmitContext):
    """What every route reads, built once by create_app and captured by each router."""

    events: EventHub
    # Redis for routes that run on the event loop (keys, the train submission): their commands
    # leave in one pipeline per loop turn.
    batch: PipelineBatch
    # The dependency that turns a request's bearer key into its caller (api/auth.py).
    caller: Callable[[Request, HTTPAuthorizationCredentials | None], Awaitable[Principal]]
