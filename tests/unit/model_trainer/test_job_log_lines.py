"""What run_job writes to a job's log: how it started and how it ended, and what it said between."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path

import fakeredis
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from tests.support.records import queued_record

from model_trainer.contracts.defaults import make_generate_config
from model_trainer.contracts.jobs import DOMAIN, QUEUE_FOR_TYPE, GenerateJobPayload, JobType
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.job_store import JobStore
from model_trainer.training.checkpoint import resume_latest
from model_trainer.worker import job_utils
from model_trainer.worker.generate_job import run_generate_job
from model_trainer.worker.job_utils import job_context, outcome_summary, run_job
from platform_core.job_logs import JobLogLine
from platform_core.json_types import JSONObject
from platform_workers.job_logs import JobLogHandler, read_job_logs
from platform_workers.redis_conn import RedisClient

CONFIG: JSONObject = {"model_family": "char_lstm", "max_steps": 40}
work_log = logging.getLogger("model_trainer.backends.test")


@pytest.fixture
def redis() -> RedisClient:
    return fakeredis.FakeRedis()


def run(redis: RedisClient, work: Callable[[], JSONObject], *, job_type: JobType = "train") -> None:
    """Run `work` as job j1 (its second attempt), as a worker would."""
    store = JobStore(redis)
    store.create({**queued_record("j1", job_type, "run-1"), "attempts": 2})
    ctx = job_context(redis, job_id="j1", user_id=1, queue=QUEUE_FOR_TYPE[job_type])
    run_job(ctx, store, "j1", work, job_type=job_type, config=CONFIG)


def lines(redis: RedisClient, job_id: str = "j1") -> list[JobLogLine]:
    return read_job_logs(redis, DOMAIN, job_id, tail=1000)[0]


def messages(redis: RedisClient) -> list[tuple[str, str]]:
    return [(line["level"], line["message"]) for line in lines(redis)]


def failing(error: Exception) -> Callable[[], JSONObject]:
    def work() -> JSONObject:
        raise error

    return work


def test_a_completed_job_logs_its_start_its_own_lines_and_a_summary(redis: RedisClient) -> None:
    def work() -> JSONObject:
        work_log.info("resuming from checkpoint step_000000020")
        warnings.warn("tokenizer covers 99% of the corpus", UserWarning, stacklevel=1)
        work_log.debug("not kept")
        return {"run_id": "run-1", "loss": 1.25, "val_loss": None, "outputs": ["a"], "m": {}}

    run(redis, work)
    kept = lines(redis)
    assert [(line["logger"], line["message"]) for line in kept[:2]] == [
        ("model_trainer.worker.job_utils", "job started: train"),
        ("model_trainer.backends.test", "resuming from checkpoint step_000000020"),
    ]
    assert kept[0].get("fields") == {"event": "job.started", "type": "train", "config": CONFIG}
    assert (kept[2]["level"], kept[2]["logger"]) == ("WARNING", "py.warnings")
    assert "tokenizer covers 99% of the corpus" in kept[2]["message"]
    assert kept[3]["message"].startswith("job completed in ")
    summary = kept[3].get("fields", {})
    duration = summary.pop("duration_s")
    assert summary == {"event": "job.completed", "run_id": "run-1", "loss": 1.25, "val_loss": None}
    assert isinstance(duration, float) and 0 <= duration < 5
    assert {line.get("attempt") for line in kept} == {2}
    assert {line["job_id"] for line in kept} == {"j1"}
    record = JobStore(redis).get("j1")
    assert record is not None and record["status"] == "completed"


def test_the_handler_is_gone_once_the_job_ends(redis: RedisClient) -> None:
    root = logging.getLogger()
    before, level = root.handlers[:], root.level
    with pytest.raises(ModelTrainerError):
        run(redis, failing(ModelTrainerError("CORPUS_EMPTY", "corpus x is empty")))
    run(redis, lambda: {"steps": 1})
    assert root.handlers == before and root.level == level
    assert not any(isinstance(handler, JobLogHandler) for handler in root.handlers)
    count = len(lines(redis))
    work_log.warning("between jobs")
    assert len(lines(redis)) == count


def test_a_failed_job_logs_its_error_code_kind_and_message(redis: RedisClient) -> None:
    with pytest.raises(ModelTrainerError):
        run(redis, failing(ModelTrainerError("CORPUS_EMPTY", "corpus x is empty")))
    last = lines(redis)[-1]
    assert (last["level"], last["message"]) == (
        "ERROR",
        "job failed: CORPUS_EMPTY: corpus x is empty",
    )
    fields = last.get("fields", {})
    assert isinstance(fields.pop("duration_s"), float)
    assert fields == {
        "event": "job.failed",
        "code": "CORPUS_EMPTY",
        "kind": "user",
        "message": "corpus x is empty",
    }


def test_a_bug_in_the_work_is_logged_with_its_final_code(redis: RedisClient) -> None:
    with pytest.raises(KeyError):
        run(redis, failing(KeyError("run_id")))
    assert messages(redis)[-1] == ("ERROR", "job failed: INTERNAL_ERROR: KeyError('run_id')")


def test_a_cancelled_job_is_logged_as_cancelled(redis: RedisClient) -> None:
    with pytest.raises(ModelTrainerError):
        run(redis, failing(ModelTrainerError("TRAINING_CANCELLED", "stopped at step 3")))
    assert messages(redis)[-1] == (
        "WARNING",
        "job cancelled: TRAINING_CANCELLED: stopped at step 3",
    )


def test_a_preempted_or_interrupted_job_says_it_will_run_again(
    redis: RedisClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    preempted = ModelTrainerError("TRAINING_PREEMPTED", "worker shutting down; back in the queue")
    with pytest.raises(ModelTrainerError):
        run(redis, failing(preempted))
    assert messages(redis)[-1] == (
        "WARNING",
        "job preempted: worker shutting down; back in the queue",
    )
    monkeypatch.setattr(job_utils, "_will_retry", lambda: True)
    with pytest.raises(RedisConnectionError):
        run(redis, failing(RedisConnectionError("Connection reset")))
    level, message = messages(redis)[-1]
    assert (level, message.split(":")[0]) == ("WARNING", "job interrupted, RQ will retry it")


def test_a_job_run_outside_a_worker_logs_without_an_attempt(redis: RedisClient) -> None:
    store = JobStore(redis)
    store.create(queued_record("t1", "tokenizer", None))  # never marked running: attempts 0
    ctx = job_context(redis, job_id="t1", user_id=1, queue="train")
    run_job(ctx, store, "t1", lambda: {}, job_type="tokenizer", config={})
    assert ["attempt" in line for line in lines(redis, "t1")] == [False, False]


def test_an_inference_job_logs_its_type_and_config(redis: RedisClient, settings: Settings) -> None:
    config = make_generate_config(prompt_text="To be", max_new_tokens=5)
    payload: GenerateJobPayload = {
        "job_id": "g1",
        "user_id": 1,
        "run_id": "gone",
        "step": None,
        "config": config,
    }
    JobStore(redis).create(queued_record("g1", "generate", "gone"))
    with pytest.raises(ModelTrainerError):
        run_generate_job(payload, settings=settings, redis=redis)
    first, last = lines(redis, "g1")
    assert first.get("fields") == {"event": "job.started", "type": "generate", "config": config}
    assert last["message"].startswith("job failed: MODEL_NOT_FOUND")


def test_the_completion_summary_keeps_scalars_and_cuts_long_text() -> None:
    result: JSONObject = {"note": "x" * 500, "steps": 3, "ok": True, "per_token": [1], "d": {}}
    assert outcome_summary(result) == {"note": "x" * 200, "steps": 3, "ok": True}


def test_a_resumed_training_says_from_which_checkpoint(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "step_000000010").mkdir()
    caplog.set_level(logging.INFO)
    assert resume_latest(tmp_path, lambda path: None) == tmp_path / "step_000000010"
    assert "resuming from checkpoint step_000000010" in caplog.text
