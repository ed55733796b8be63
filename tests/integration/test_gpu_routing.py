"""GPU routing against a real redis-server: a real CPU worker process (device found by its own
probe) never takes a job that needs CUDA, which waits on its CUDA queue while a job submitted
after it with device auto completes; a CUDA worker is stood in by its RQ registration (this
machine has no GPU), which is what the API's check and /readyz read. A study whose CUDA worker
went away keeps its trial waiting, and submits it once one is back."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter
from rq import Queue, Worker
from tests.support.processes import cli_process, stop, wait_for
from tests.support.workers import register_worker

from model_trainer.api import SubmitContext
from model_trainer.api.app import create_app
from model_trainer.api.routes.studies import study_record
from model_trainer.api.schemas import ParamRequest, StudyRequest, TrainJobRequest
from model_trainer.api.study_spec import checked_spec
from model_trainer.contracts.jobs import worker_rq_queues
from model_trainer.contracts.model import DeviceChoice
from model_trainer.settings import Settings
from model_trainer.storage.api_keys import Principal, create_key
from model_trainer.storage.job_store import JobStore
from model_trainer.storage.studies import StudyStore
from model_trainer.studies.driver import advance
from platform_core.json_types import JSONObject, load_json_object
from platform_workers.redis_conn import RedisClient

CALLER: Principal = {"user_id": 1, "user": "alice", "admin": False, "key_id": "a" * 12}


def train_body(device: DeviceChoice) -> JSONObject:
    return load_json_object(TypeAdapter(TrainJobRequest).dump_json(train(device)))


def train(device: DeviceChoice) -> TrainJobRequest:
    """Five CPU steps of a tiny model; the study's base keeps a validation split."""
    return TrainJobRequest(
        model_family="char_lstm",
        model_size="tiny",
        corpus_path="corpus.txt",
        max_seq_len=32,
        batch_size=8,
        max_steps=5,
        val_fraction=0.2,
        device=device,
    )


@pytest.fixture
def ctx(redis: RedisClient, redis_url: str, settings: Settings, corpus_path: Path) -> SubmitContext:
    assert corpus_path.is_file()
    return {
        "settings": {**settings, "redis_url": redis_url},
        "redis": redis,
        "jobs": JobStore(redis),
    }


def _status(ctx: SubmitContext, job_id: str) -> str:
    record = ctx["jobs"].get(job_id)
    assert record is not None
    return record["status"]


def test_a_cpu_worker_leaves_a_cuda_job_queued_and_runs_the_auto_job_after_it(
    ctx: SubmitContext, redis: RedisClient, service_env: dict[str, str]
) -> None:
    key = create_key(redis, "alice")["key"]
    app = create_app(ctx["settings"], redis)
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as http:
        stand_in = register_worker(redis, *worker_rq_queues("train", "cuda"), name="cuda-gpu1")
        needs_cuda = http.post("/v1/jobs/train", json=train_body("cuda")).json()["job_id"]
        anywhere = http.post("/v1/jobs/train", json=train_body("auto")).json()["job_id"]
        assert Queue("train-cuda", connection=redis).job_ids == [needs_cuda]
        assert Queue("train", connection=redis).job_ids == [anywhere]

        worker = cli_process(["worker", "--queues", "train"], service_env)  # WORKER_DEVICE unset
        try:
            wait_for(
                lambda: _status(ctx, anywhere) == "completed",
                timeout=90,
                what="the auto job to complete on the CPU worker",
            )
            listening = Worker.all(queue=Queue("train", connection=redis))
            (cpu,) = [w for w in listening if w.name != stand_in.name]
            assert cpu.name.startswith("cpu-train-")
            assert "train-cuda" not in cpu.queue_names()
            time.sleep(1.0)  # the CPU worker is idle again, listening; the CUDA job still waits
            assert _status(ctx, needs_cuda) == "queued"
            assert Queue("train-cuda", connection=redis).job_ids == [needs_cuda]
            stand_in.heartbeat()
            ready = http.get("/readyz").json()
            assert ready["workers"]["train"] == 2
            assert ready["cuda_workers"] == {"train": 1, "infer": 0}
        finally:
            stop(worker)


def test_a_study_trial_waits_while_no_cuda_worker_listens(
    ctx: SubmitContext, redis: RedisClient
) -> None:
    owner = create_key(redis, "alice")
    stand_in = register_worker(redis, *worker_rq_queues("train", "cuda"))
    body = StudyRequest(
        base=train("cuda"),
        search_space=[ParamRequest(name="learning_rate", type="float", low=1e-4, high=1e-2)],
        n_trials=1,
        parallelism=1,
    )
    record = study_record(owner, checked_spec(ctx, owner, body), None)
    StudyStore(redis).create(record)
    redis.hset(stand_in.key, "last_heartbeat", "2000-01-01T00:00:00.000000Z")  # went silent
    advance(ctx, record["study_id"])
    (trial,) = StudyStore(redis).trials(record["study_id"])
    assert trial["state"] == "waiting"
    assert Queue("train-cuda", connection=redis).count == 0
    stand_in.heartbeat()  # back
    advance(ctx, record["study_id"])
    (trial,) = StudyStore(redis).trials(record["study_id"])
    assert trial["state"] == "running"
    assert Queue("train-cuda", connection=redis).job_ids == [trial["job_id"]]
