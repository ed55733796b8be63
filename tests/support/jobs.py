"""Waiting on jobs through the API, as e2e tests do."""

from __future__ import annotations

from model_trainer.client import TrainerClient
from platform_core.json_types import JSONObject


def finished(client: TrainerClient, job_id: str) -> JSONObject:
    """Follows the job's events to their end; the job must have completed: its result."""
    for _ in client.events(job_id):
        pass
    record = client.job(job_id)
    assert record["status"] == "completed", record
    result = record["result"]
    assert isinstance(result, dict)
    return result
