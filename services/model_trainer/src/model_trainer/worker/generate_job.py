"""process_generate_job: sample text from a trained run."""

from __future__ import annotations

from model_trainer.contracts.jobs import GenerateJobPayload
from model_trainer.settings import Settings
from model_trainer.worker.job_utils import connect, run_inference_job
from platform_core.json_types import JSONObject
from platform_workers.redis_conn import RedisClient


def process_generate_job(payload: GenerateJobPayload) -> JSONObject:
    """RQ entry point; runs inside the inference worker, whose model cache outlives the job."""
    settings, redis = connect()
    return run_generate_job(payload, settings=settings, redis=redis)


def run_generate_job(
    payload: GenerateJobPayload, *, settings: Settings, redis: RedisClient
) -> JSONObject:
    return run_inference_job(
        payload,
        "generate",
        lambda backend, prepared, should_stop: backend.generate(
            prepared=prepared, cfg=payload["config"], settings=settings, should_stop=should_stop
        ),
        settings=settings,
        redis=redis,
    )
