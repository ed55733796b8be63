"""Job functions against a real redis-server meeting damaged artifacts: an inference job on a
tampered run fails with ARTIFACT_CORRUPT (warm cache or not), and what train and tokenizer
jobs write is readable by every local user."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from tests.support.artifacts import flip_last_byte, modes, usual_umask
from tests.support.records import queued_record

from model_trainer.contracts.defaults import (
    make_eval_config,
    make_generate_config,
    make_score_config,
    make_tokenizer_config,
)
from model_trainer.contracts.jobs import (
    EvalJobPayload,
    GenerateJobPayload,
    JobType,
    ScoreJobPayload,
    TrainJobPayload,
)
from model_trainer.contracts.train_config import TRAIN_DEFAULTS, make_train_config
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.job_store import JobStore
from model_trainer.storage.runs import run_dir
from model_trainer.worker import model_cache
from model_trainer.worker.eval_job import run_eval_job
from model_trainer.worker.generate_job import run_generate_job
from model_trainer.worker.score_job import run_score_job
from model_trainer.worker.tokenizer_job import run_tokenizer_job
from model_trainer.worker.train_job import run_train_job
from platform_core.job_events import decode_job_event
from platform_core.json_types import JSONObject
from platform_workers.event_stream import read_events
from platform_workers.redis_conn import RedisClient

RUN_ID = "run-i"


def _train(redis: RedisClient, settings: Settings, corpus: Path) -> Path:
    """A train job without a tokenizer_id (so it stores the corpus's char tokenizer too),
    checkpointing every 5 of its 12 steps."""
    JobStore(redis).create(queued_record("t1", "train", RUN_ID))
    config = make_train_config(
        model_family="char_lstm",
        model_size="tiny",
        corpus_path=str(corpus),
        options={
            **TRAIN_DEFAULTS,
            "max_seq_len": 16,
            "batch_size": 8,
            "max_steps": 12,
            "checkpoint_every_steps": 5,
            "device": "cpu",
        },
    )
    payload: TrainJobPayload = {
        "job_id": "t1",
        "user_id": 1,
        "run_id": RUN_ID,
        "config": config,
        "tokenizer_id": None,
    }
    run_train_job(payload, settings=settings, redis=redis)
    model_cache.clear()
    return run_dir(settings, RUN_ID)


InferenceJob = Callable[[str, RedisClient, Settings, Path], JSONObject]


def _generate(job_id: str, redis: RedisClient, settings: Settings, corpus: Path) -> JSONObject:
    config = make_generate_config(prompt_text="To", max_new_tokens=5, seed=1)
    payload: GenerateJobPayload = {
        "job_id": job_id,
        "user_id": 1,
        "run_id": RUN_ID,
        "config": config,
        "step": None,
    }
    return run_generate_job(payload, settings=settings, redis=redis)


def _score(job_id: str, redis: RedisClient, settings: Settings, corpus: Path) -> JSONObject:
    config = make_score_config(text="To be")
    payload: ScoreJobPayload = {
        "job_id": job_id,
        "user_id": 1,
        "run_id": RUN_ID,
        "config": config,
        "step": None,
    }
    return run_score_job(payload, settings=settings, redis=redis)


def _eval(job_id: str, redis: RedisClient, settings: Settings, corpus: Path) -> JSONObject:
    config = make_eval_config(corpus_path=str(corpus), max_seq_len=16, batch_size=8)
    payload: EvalJobPayload = {
        "job_id": job_id,
        "user_id": 1,
        "run_id": RUN_ID,
        "config": config,
        "step": None,
    }
    return run_eval_job(payload, settings=settings, redis=redis)


JOBS: dict[JobType, InferenceJob] = {"generate": _generate, "score": _score, "eval": _eval}


@pytest.mark.parametrize("job_type", sorted(JOBS))
def test_an_inference_job_on_a_tampered_run_fails_coded_even_when_warm(
    redis: RedisClient, settings: Settings, corpus_path: Path, job_type: JobType
) -> None:
    directory = _train(redis, settings, corpus_path)
    store, job = JobStore(redis), JOBS[job_type]
    store.create(queued_record("warm", job_type, RUN_ID))
    job("warm", redis, settings, corpus_path)  # the run is now in this worker's cache
    flip_last_byte(directory / "model.safetensors")
    store.create(queued_record("bad", job_type, RUN_ID))
    with pytest.raises(ModelTrainerError) as caught:
        job("bad", redis, settings, corpus_path)
    assert caught.value.code == "ARTIFACT_CORRUPT"
    record = store.get("bad")
    assert record is not None and record["status"] == "failed" and record["error"] is not None
    assert (record["error"]["code"], record["error"]["kind"]) == ("ARTIFACT_CORRUPT", "system")
    assert record["error"]["message"].startswith(f"model.safetensors in {directory} does not")
    failed = decode_job_event(read_events(redis, "trainer", "bad")[-1][1])
    assert failed["type"] == "trainer.job.failed.v1"
    assert failed["code"] == "ARTIFACT_CORRUPT"


def test_a_warm_run_is_reused_until_one_of_its_files_is_rewritten(
    redis: RedisClient, settings: Settings, corpus_path: Path
) -> None:
    """A hit costs a stat per file, no hashing; any rewrite (even of the same bytes) is a miss
    whose load checks every digest again."""
    directory = _train(redis, settings, corpus_path)
    first = model_cache.load_run(RUN_ID, settings)
    assert model_cache.load_run(RUN_ID, settings) is first
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes())
    second = model_cache.load_run(RUN_ID, settings)
    assert second is not first
    assert model_cache.load_run(RUN_ID, settings) is second


def test_what_train_and_tokenizer_jobs_write_is_readable_by_everyone(
    redis: RedisClient, settings: Settings, corpus_path: Path
) -> None:
    """Under umask 022: 0755 folders and 0644 files, checkpoints and stored tokenizers too."""
    JobStore(redis).create(queued_record("k1", "tokenizer", None))
    tokenizer = make_tokenizer_config(
        corpus_path=str(corpus_path), tokenizer_id="bpe-k1", kind="bpe", vocab_size=300
    )
    with usual_umask():
        run_tokenizer_job(
            {"job_id": "k1", "user_id": 1, "config": tokenizer}, settings=settings, redis=redis
        )
        _train(redis, settings, corpus_path)
    found = modes(settings["artifacts_root"])
    assert {"runs/run-i/model.safetensors", "tokenizers/bpe-k1/tokenizer.json"} <= found.keys()
    assert "runs/run-i/checkpoints/step_000000010/training.safetensors" in found
    assert any(name.startswith("tokenizers/char-") for name in found)
    root = settings["artifacts_root"]
    assert found == {name: 0o755 if (root / name).is_dir() else 0o644 for name in found}
