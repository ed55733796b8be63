"""process_eval_job: a trained run's loss on a corpus (by default its validation split)."""

from __future__ import annotations

from model_trainer.contracts.jobs import EvalJobPayload
from model_trainer.settings import Settings
from model_trainer.worker.job_utils import connect, run_inference_job
from platform_core.json_types import JSONObject
from platform_workers.redis_conn import RedisClient


def process_eval_job(payload: EvalJobPayload) -> JSONObject:
    settings, redis = connect()
    return run_eval_job(payload, settings=settings, redis=redis)


def run_eval_job(payload: EvalJobPayload, *, settings: Settings, redis: RedisClient) -> JSONObject:
    return run_inference_job(
        payload,
        "eval",
        lambda backend, prepared, should_stop: backend.evaluate(
            prepared=prepared, cfg=payload["config"], settings=settings, should_stop=should_stop
        ),
        settings=settings,
        redis=redis,
    )
