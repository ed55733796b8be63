"""Job functions against a real redis-server: records, events, failures, the model cache."""

from __future__ import annotations

from pathlib import Path

import pytest
from rq import Queue, Retry
from rq.serializers import JSONSerializer
from tests.support.backends import train_cfg, train_run
from tests.support.records import queued_record

from model_trainer.backends.char_lstm import BACKEND as CHAR_LSTM_BACKEND
from model_trainer.contracts.defaults import (
    make_eval_config,
    make_generate_config,
    make_score_config,
)
from model_trainer.contracts.jobs import JobType, TrainJobPayload
from model_trainer.contracts.limits import MAX_NEW_TOKENS, MAX_RETURN_SEQUENCES
from model_trainer.contracts.train_config import TRAIN_DEFAULTS, make_train_config
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.job_store import JobStore
from model_trainer.worker import model_cache
from model_trainer.worker.eval_job import run_eval_job
from model_trainer.worker.generate_job import run_generate_job
from model_trainer.worker.score_job import run_score_job
from model_trainer.worker.train_job import run_train_job
from model_trainer.worker.worker_entry import make_worker
from platform_core.job_events import decode_job_event
from platform_core.json_types import load_json_object
from platform_core.trainer_metrics_events import decode_trainer_metrics_event, is_progress_metrics
from platform_workers.event_stream import read_events
from platform_workers.redis_conn import RedisClient


def _train_payload(job_id: str, corpus: Path, run_id: str = "run-a") -> TrainJobPayload:
    config = make_train_config(
        model_family="char_lstm",
        model_size="tiny",
        corpus_path=str(corpus),
        options={
            **TRAIN_DEFAULTS,
            "max_seq_len": 32,
            "batch_size": 8,
            "max_steps": 20,
            "log_every_steps": 5,
            "device": "cpu",
        },
    )
    return {
        "job_id": job_id,
        "user_id": 1,
        "run_id": run_id,
        "config": config,
        "tokenizer_id": None,
    }


def _event_types(redis: RedisClient, job_id: str) -> list[str]:
    types = []
    for _, data in read_events(redis, "trainer", job_id):
        event_type = load_json_object(data)["type"]
        assert isinstance(event_type, str)
        types.append(event_type)
    return types


@pytest.fixture
def worker_env(redis_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """What RQ's job functions read when the worker calls them with only a payload."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("ARTIFACTS_ROOT", str(settings["artifacts_root"]))
    monkeypatch.setenv("DATA_ROOT", str(settings["data_root"]))


@pytest.fixture
def trained(redis: RedisClient, settings: Settings, corpus_path: Path) -> str:
    JobStore(redis).create(queued_record("t1", "train", "run-a"))
    run_train_job(_train_payload("t1", corpus_path), settings=settings, redis=redis)
    model_cache.clear()
    return "run-a"


def test_train_job_records_the_result_and_publishes_metrics(
    redis: RedisClient, settings: Settings, trained: str
) -> None:
    record = JobStore(redis).get("t1")
    assert record is not None
    assert record["status"] == "completed"
    assert record["progress"] == 1.0
    assert record["result"] is not None
    assert record["result"]["run_id"] == trained
    assert record["result"]["steps"] == 20
    types = [t for t in _event_types(redis, "t1") if t != "trainer.job.progress.v1"]
    assert types[0] == "trainer.metrics.config.v1"
    assert types[-2:] == ["trainer.metrics.completed.v1", "trainer.job.completed.v1"]
    assert "trainer.metrics.progress.v1" in types
    # Each validation is published at once, its val_loss on a progress metrics event: the last
    # is the final one, the result's.
    validated = [
        event
        for _, data in read_events(redis, "trainer", "t1")
        if load_json_object(data)["type"] == "trainer.metrics.progress.v1"
        and is_progress_metrics(event := decode_trainer_metrics_event(data))
        and "val_loss" in event
    ]
    assert validated
    assert validated[-1]["step"] == 20
    assert validated[-1].get("val_loss") == record["result"]["val_loss"]


def test_a_coded_failure_is_recorded_and_announced(redis: RedisClient, settings: Settings) -> None:
    JobStore(redis).create(queued_record("t2", "train", "run-b"))
    missing = settings["data_root"] / "missing.txt"
    with pytest.raises(ModelTrainerError):
        run_train_job(_train_payload("t2", missing, "run-b"), settings=settings, redis=redis)
    record = JobStore(redis).get("t2")
    assert record is not None
    assert record["status"] == "failed"
    assert record["error"] is not None
    assert record["error"]["code"] == "CORPUS_NOT_FOUND"
    assert record["error"]["kind"] == "user"
    failed = decode_job_event(read_events(redis, "trainer", "t2")[-1][1])
    assert failed["type"] == "trainer.job.failed.v1"


def test_a_cancel_flag_stops_training_as_cancelled(
    redis: RedisClient, settings: Settings, corpus_path: Path
) -> None:
    store = JobStore(redis)
    store.create(queued_record("t3", "train", "run-c"))
    store.request_cancel("t3")
    with pytest.raises(ModelTrainerError) as caught:
        run_train_job(_train_payload("t3", corpus_path, "run-c"), settings=settings, redis=redis)
    assert caught.value.code == "TRAINING_CANCELLED"
    record = store.get("t3")
    assert record is not None
    assert record["status"] == "cancelled"
    assert record["error"] == {
        "code": "TRAINING_CANCELLED",
        "kind": "user",
        "message": "training cancelled at step 0",
    }


def test_inference_jobs_use_the_trained_run_and_keep_it_loaded(
    redis: RedisClient, settings: Settings, corpus_path: Path, trained: str
) -> None:
    store = JobStore(redis)
    jobs: tuple[tuple[str, JobType], ...] = (("g1", "generate"), ("s1", "score"), ("e1", "eval"))
    for job_id, job_type in jobs:
        store.create(queued_record(job_id, job_type, trained))
    generated = run_generate_job(
        {
            "job_id": "g1",
            "user_id": 1,
            "run_id": trained,
            "step": None,
            "config": make_generate_config(prompt_text="To", max_new_tokens=10, seed=1),
        },
        settings=settings,
        redis=redis,
    )
    outputs = generated["outputs"]
    assert isinstance(outputs, list) and isinstance(outputs[0], str)
    assert outputs[0].startswith("To")
    first_load = model_cache.load_run(trained, settings)
    scored = run_score_job(
        {
            "job_id": "s1",
            "user_id": 1,
            "run_id": trained,
            "step": None,
            "config": make_score_config(text="To be", detail_level="per_char", top_k=2),
        },
        settings=settings,
        redis=redis,
    )
    assert scored["num_tokens"] == 5
    assert model_cache.load_run(trained, settings) is first_load
    evaluated = run_eval_job(
        {
            "job_id": "e1",
            "user_id": 1,
            "run_id": trained,
            "step": None,
            "config": make_eval_config(corpus_path=str(corpus_path), max_seq_len=32, batch_size=8),
        },
        settings=settings,
        redis=redis,
    )
    loss = evaluated["loss"]
    assert isinstance(loss, float) and loss > 0
    for job_id in ("g1", "s1", "e1"):
        record = store.get(job_id)
        assert record is not None and record["status"] == "completed"


def test_the_model_cache_evicts_the_least_recent_and_refuses_unknown_runs(
    redis: RedisClient, settings: Settings, corpus_path: Path, trained: str
) -> None:
    runs = settings["artifacts_root"] / "runs"
    for index in range(model_cache.CACHE_SIZE):
        target = runs / f"copy-{index}"
        target.mkdir()
        for item in (runs / trained).iterdir():
            if item.is_file():
                (target / item.name).write_bytes(item.read_bytes())
    first = model_cache.load_run(trained, settings)
    for index in range(model_cache.CACHE_SIZE):
        model_cache.load_run(f"copy-{index}", settings)
    assert model_cache.load_run(trained, settings) is not first
    with pytest.raises(ModelTrainerError) as caught:
        model_cache.load_run("nope", settings)
    assert caught.value.code == "MODEL_NOT_FOUND"


@pytest.mark.usefixtures("worker_env")
def test_an_infer_worker_runs_queued_jobs_in_process(
    redis: RedisClient, trained: str, corpus_path: Path
) -> None:
    """A real RQ SimpleWorker in burst mode: started is announced, the result recorded."""
    store = JobStore(redis)
    store.create(queued_record("g2", "generate", trained))
    store.create(queued_record("e2", "eval", trained))
    queue = Queue("infer", connection=redis, serializer=JSONSerializer)
    generate = {
        "job_id": "g2",
        "user_id": 1,
        "run_id": trained,
        "step": None,
        "config": make_generate_config(prompt_text="Or", max_new_tokens=5, seed=2),
    }
    evaluate = {
        "job_id": "e2",
        "user_id": 1,
        "run_id": trained,
        "step": None,
        "config": make_eval_config(corpus_path=str(corpus_path), max_seq_len=32, batch_size=8),
    }
    queue.enqueue("model_trainer.worker.generate_job.process_generate_job", generate, job_id="g2")
    queue.enqueue("model_trainer.worker.eval_job.process_eval_job", evaluate, job_id="e2")
    assert make_worker("infer", redis).work(burst=True)
    for job_id in ("g2", "e2"):
        record = store.get(job_id)
        assert record is not None
        assert record["status"] == "completed"
        assert record["attempts"] == 1
        assert _event_types(redis, job_id) == [
            "trainer.job.started.v1",
            "trainer.job.completed.v1",
        ]


@pytest.mark.usefixtures("worker_env")
def test_an_unexpected_error_is_final_at_once_and_recorded_as_internal(
    redis: RedisClient,
) -> None:
    """The same payload would fail the same way again: no retry, even with retries left."""
    store = JobStore(redis)
    store.create(queued_record("bad", "score", "run-x"))
    queue = Queue("infer", connection=redis, serializer=JSONSerializer)
    broken = {"job_id": "bad", "user_id": 1}  # no run_id: a KeyError, not a coded error
    queue.enqueue(
        "model_trainer.worker.score_job.process_score_job",
        broken,
        job_id="bad",
        retry=Retry(max=2),
    )
    make_worker("infer", redis).work(burst=True)
    record = store.get("bad")
    assert record is not None
    assert record["attempts"] == 1
    assert record["status"] == "failed"
    assert record["error"] is not None
    assert record["error"]["code"] == "INTERNAL_ERROR"
    assert record["error"]["kind"] == "system"
    types = _event_types(redis, "bad")
    assert types.count("trainer.job.started.v1") == 1
    assert types.count("trainer.job.failed.v1") == 1


@pytest.mark.usefixtures("worker_env")
def test_a_value_the_worker_cannot_compute_with_fails_once_as_the_users(
    redis: RedisClient, corpus_path: Path
) -> None:
    """A seed of 2**64 passes the validators but overflows torch's seed: one attempt, user kind."""
    store = JobStore(redis)
    store.create(queued_record("huge-seed", "train", "run-seed"))
    payload = _train_payload("huge-seed", corpus_path, "run-seed")
    payload["config"]["seed"] = 2**64
    queue = Queue("train", connection=redis, serializer=JSONSerializer)
    queue.enqueue(
        "model_trainer.worker.train_job.process_train_job",
        payload,
        job_id="huge-seed",
        retry=Retry(max=2),
    )
    make_worker("train", redis).work(burst=True)
    record = store.get("huge-seed")
    assert record is not None
    assert (record["status"], record["attempts"]) == ("failed", 1)
    assert record["error"] is not None
    assert (record["error"]["code"], record["error"]["kind"]) == ("UNSUPPORTED_VALUE", "user")
    assert "Overflow" in record["error"]["message"]


@pytest.mark.usefixtures("worker_env")
def test_a_job_over_its_time_limit_fails_and_the_next_one_runs(
    redis: RedisClient, settings: Settings, corpus_path: Path
) -> None:
    """RQ's timeout stops a long generate inside the infer worker; the worker goes on."""
    medium = train_cfg("char_lstm", corpus_path, max_steps=2, size="medium")
    train_run(CHAR_LSTM_BACKEND, settings, medium, "medium")
    store = JobStore(redis)
    queue = Queue("infer", connection=redis, serializer=JSONSerializer)
    # The most a request may ask for: seconds of decoding for a medium LSTM, past its 1 s.
    endless = make_generate_config(
        prompt_text="To",
        max_new_tokens=MAX_NEW_TOKENS,
        num_return_sequences=MAX_RETURN_SEQUENCES,
        stop_on_eos=False,
        seed=1,
    )
    quick = make_generate_config(prompt_text="To", max_new_tokens=5, seed=1)
    for job_id, config, timeout in (("slow", endless, 1), ("next", quick, 60)):
        store.create(queued_record(job_id, "generate", "medium"))
        payload = {"job_id": job_id, "user_id": 1, "run_id": "medium", "config": config}
        queue.enqueue(
            "model_trainer.worker.generate_job.process_generate_job",
            payload,
            job_id=job_id,
            job_timeout=timeout,
            retry=Retry(max=2),
        )
    make_worker("infer", redis).work(burst=True)
    slow = store.get("slow")
    assert slow is not None and slow["error"] is not None
    assert (slow["status"], slow["attempts"]) == ("failed", 1)
    assert (slow["error"]["code"], slow["error"]["kind"]) == ("JOB_TIMEOUT", "resource")
    following = store.get("next")
    assert following is not None and following["status"] == "completed"
