"""The HTTP API: validates, records, enqueues and reads; all model work happens in workers."""

from __future__ import annotations

from typing import TypedDict

from model_trainer.api.event_hub import EventHub
from model_trainer.settings import Settings
from model_trainer.storage.job_store import JobStore
from platform_workers.redis_conn import RedisClient


class ApiContext(TypedDict):
    """What every route reads, built once by create_app and captured by each router."""

    settings: Settings
    redis: RedisClient
    jobs: JobStore
    events: EventHub
