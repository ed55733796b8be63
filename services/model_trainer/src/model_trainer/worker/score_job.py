"""process_score_job: how likely a trained run finds a text, overall or per character."""

from __future__ import annotations

from model_trainer.contracts.jobs import ScoreJobPayload
from model_trainer.settings import Settings
from model_trainer.worker.job_utils import connect, run_inference_job
from platform_core.json_types import JSONObject
from platform_workers.redis_conn import RedisClient


def process_score_job(payload: ScoreJobPayload) -> JSONObject:
    settings, redis = connect()
    return run_score_job(payload, settings=settings, redis=redis)


def run_score_job(
    payload: ScoreJobPayload, *, settings: Settings, redis: RedisClient
) -> JSONObject:
    return run_inference_job(
        payload,
        "score",
        lambda backend, prepared, should_stop: backend.score(
            prepared=prepared, cfg=payload["config"], settings=settings, should_stop=should_stop
        ),
        settings=settings,
        redis=redis,
    )
