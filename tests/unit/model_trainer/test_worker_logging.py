"""A worker's own log: JSON lines naming the job, and RQ's traceback only for our bugs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import fakeredis
import pytest
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.timeouts import JobTimeoutException
from tests.support.records import queued_record

from model_trainer.errors import ModelTrainerError
from model_trainer.storage.job_store import JobStore
from model_trainer.worker.job_utils import job_context, reported_by_the_job, run_job
from model_trainer.worker.worker_entry import make_worker
from platform_core.json_types import JSONObject, load_json_object
from platform_core.structured_logs import JsonFormatter, configure_logging
from platform_workers.redis_conn import RedisClient

RQ_TRACEBACK_LINE = "exception raised while executing"


@pytest.fixture
def redis() -> RedisClient:
    return fakeredis.FakeRedis()


@pytest.fixture
def json_lines(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], list[JSONObject]]]:
    """Reads this process's log as JSON lines on (captured) stderr, as a worker prints it, once
    the test has called configure_logging (capsys's stream is the test call's own)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield lambda: [load_json_object(line) for line in capsys.readouterr().err.splitlines()]
    root.handlers[:] = handlers
    root.setLevel(level)


def failing(error: Exception) -> Callable[[], JSONObject]:
    def work() -> JSONObject:
        raise error

    return work


def run(redis: RedisClient, job_id: str, work: Callable[[], JSONObject]) -> None:
    store = JobStore(redis)
    store.create(queued_record(job_id, "generate", "run-1"))
    store.mark_running(job_id, now="2026-01-01T00:00:00+00:00")
    ctx = job_context(redis, job_id=job_id, user_id=3, queue="infer")
    run_job(ctx, store, job_id, work, job_type="generate", config={"seed": 1})


def test_every_line_of_a_job_names_it_and_its_ending_says_how_long_it_took(
    redis: RedisClient, json_lines: Callable[[], list[JSONObject]]
) -> None:
    configure_logging("INFO")

    def work() -> JSONObject:
        logging.getLogger("model_trainer.backends.test").info("sampling")
        return {"text": "To be", "tokens": 5, "scores": [1.0]}

    run(redis, "ok", work)
    with pytest.raises(ModelTrainerError):
        run(redis, "stop", failing(ModelTrainerError("TRAINING_CANCELLED", "stopped")))
    lines = json_lines()
    context = {"job_id", "user_id", "type", "attempt"}
    assert {line["job_id"] for line in lines} == {"ok", "stop"}
    assert all(context <= set(line) and line["type"] == "generate" for line in lines)
    assert all(line["user_id"] == 3 and line["attempt"] == 1 for line in lines)
    assert [line.get("event") for line in lines] == [
        "job.started",
        None,
        "job.completed",
        "job.started",
        "job.cancelled",
    ]
    completed, cancelled = lines[2], lines[4]
    assert (completed["text"], completed["tokens"]) == ("To be", 5)
    assert "scores" not in completed and isinstance(completed["duration_s"], float)
    assert (cancelled["level"], cancelled["code"], cancelled["kind"]) == (
        "WARNING",
        "TRAINING_CANCELLED",
        "user",
    )
    assert "exc" not in cancelled


@pytest.mark.parametrize(
    ("error", "reported"),
    [
        (ModelTrainerError("TRAINING_CANCELLED", "stopped"), True),
        (ModelTrainerError("MODEL_NOT_FOUND", "no run"), True),
        (JobTimeoutException("past 60 s"), True),
        (MemoryError(), True),
        (KeyError("run_id"), False),
        (ConnectionError("reset"), False),
        ("not an exception", False),
    ],
)
def test_rq_repeats_only_what_the_job_did_not_say(error: object, reported: bool) -> None:
    assert reported_by_the_job(error) is reported


@pytest.mark.parametrize("queue", ["train", "infer"])
def test_workers_keep_rq_s_traceback_for_bugs_only(
    redis: RedisClient, queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    worker = make_worker("train" if queue == "train" else "infer", redis)
    job = Job.create(
        "model_trainer.worker.generate_job.process_generate_job",
        args=({},),
        connection=redis,
        serializer=JSONSerializer,
        id="j1",
        origin=queue,
    )
    for error in (ModelTrainerError("MODEL_NOT_FOUND", "no run"), KeyError("run_id")):
        try:
            raise error
        except Exception as caught:
            worker.handle_exception(job, type(caught), caught, caught.__traceback__)
    told = [record for record in caplog.records if RQ_TRACEBACK_LINE in record.getMessage()]
    assert len(told) == 1 and "KeyError: 'run_id'" in told[0].getMessage()
    assert "Traceback" in JsonFormatter().format(told[0])
