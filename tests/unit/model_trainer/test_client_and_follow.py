"""Parsing Server-Sent Events, resuming a stream that ended early, and the progress bar."""

from __future__ import annotations

import io

import httpx
import pytest

from model_trainer.client import ApiError, ServerEvent, StreamEnded, TrainerClient, parse_sse
from model_trainer.contracts.jobs import parse_queue
from model_trainer.errors import ModelTrainerError
from model_trainer.follow import bar, render
from platform_core.job_events import (
    encode_job_event,
    make_completed_event,
    make_failed_event,
    make_progress_event,
    make_started_event,
)
from platform_core.trainer_metrics_events import (
    encode_trainer_metrics_event,
    make_alert_event,
    make_completed_metrics_event,
    make_config_event,
    make_progress_metrics_event,
)


def test_parse_sse_folds_fields_and_skips_comments() -> None:
    lines = iter(
        [
            ": keepalive",
            "",
            "id: 1-0",
            "event: trainer.job.started.v1",
            'data: {"a":1}',
            "",
            "data:no-space",
            "",
            "id: 2-0",
            "",
        ]
    )
    assert list(parse_sse(lines)) == [
        {"id": "1-0", "event": "trainer.job.started.v1", "data": '{"a":1}'},
        {"id": "", "event": "message", "data": "no-space"},
    ]


def test_api_error_reads_the_coded_body() -> None:
    error = ApiError(404, {"error": {"code": "JOB_NOT_FOUND", "message": "no job x"}})
    assert error.code == "JOB_NOT_FOUND"
    assert str(error) == "HTTP 404 JOB_NOT_FOUND: no job x"
    assert ApiError(500, {"detail": "boom"}).code == ""


def test_parse_queue_accepts_known_queues_only() -> None:
    assert parse_queue("train") == "train"
    assert parse_queue("infer") == "infer"
    with pytest.raises(ModelTrainerError) as caught:
        parse_queue("gpu")
    assert caught.value.details == {"field": "queues"}


def _event(data: str) -> ServerEvent:
    event_type = data.split('"type":"', 1)[1].split('"', 1)[0]
    return {"id": "1-0", "event": event_type, "data": data}


def test_render_draws_progress_and_reports_success() -> None:
    events = [
        encode_job_event(make_started_event(job_id="j", user_id=1, queue="train")),
        encode_trainer_metrics_event(
            make_config_event(
                job_id="j",
                user_id=1,
                model_family="char_lstm",
                model_size="tiny",
                total_epochs=1,
                queue="train",
                num_params=1234,
            )
        ),
        encode_job_event(make_progress_event(job_id="j", user_id=1, progress=0.5, message="half")),
        encode_trainer_metrics_event(
            make_progress_metrics_event(
                job_id="j", user_id=1, epoch=0, total_epochs=1, step=5, loss=2.0
            )
        ),
        encode_trainer_metrics_event(
            make_alert_event(
                job_id="j",
                user_id=1,
                kind="val_loss_spike",
                step=5,
                value=2.0,
                threshold=1.5,
                message="val loss spike: val_loss 2 is above 1.5 at step 5",
            )
        ),
        encode_trainer_metrics_event(
            make_completed_metrics_event(
                job_id="j",
                user_id=1,
                loss=1.5,
                perplexity=4.5,
                artifact_path="/r",
                val_loss=1.6,
                stop_reason="early_stopping",
            )
        ),
        encode_job_event(
            make_completed_event(job_id="j", user_id=1, result_id="j", result_bytes=9)
        ),
    ]
    out = io.StringIO()
    assert render([_event(data) for data in events], out) is True
    text = out.getvalue()
    assert "started\n" in text
    assert "training char_lstm/tiny (1,234 parameters)" in text
    assert f"\r{bar(0.5)} half" in text
    assert "\nalert: val loss spike: val_loss 2 is above 1.5 at step 5\n" in text
    assert "final loss 1.5000, val loss 1.6000 (early_stopping)" in text
    assert text.endswith("completed\n")


def test_render_reports_failure() -> None:
    failed = encode_job_event(
        make_failed_event(
            job_id="j", user_id=1, error_kind="user", code="TRAINING_CANCELLED", message="stop"
        )
    )
    out = io.StringIO()
    assert render([_event(failed)], out) is False
    assert "failed: TRAINING_CANCELLED (user): stop" in out.getvalue()


def test_bar_is_clamped() -> None:
    assert bar(-1.0).endswith("  0.0%")
    assert bar(2.0) == "[" + "#" * 30 + "] 100.0%"


# ---------------------------------------------------------------- resuming a stream


def frame(entry_id: str, event_type: str) -> str:
    return f'id: {entry_id}\nevent: {event_type}\ndata: {{"type":"{event_type}"}}\n\n'


STARTED = frame("1-0", "trainer.job.started.v1")
PROGRESS = frame("2-0", "trainer.job.progress.v1")
COMPLETED = frame("3-0", "trainer.job.completed.v1")
Reply = str | int | Exception  # an SSE body, a status with an error body, or a transport error


class FakeApi:
    """Answers each events request with the next scripted reply and records what was asked."""

    def __init__(self, replies: list[Reply], status: str = "running") -> None:
        self.replies = replies
        self.status = status
        self.last_event_ids: list[str | None] = []
        self.now = 0.0
        self.sleeps: list[float] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("/events"):
            return httpx.Response(200, json={"job_id": "j", "status": self.status})
        self.last_event_ids.append(request.headers.get("last-event-id"))
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, int):
            return httpx.Response(reply, json={"error": {"code": "X", "message": "no"}})
        return httpx.Response(200, content=reply.encode())

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def client(self, give_up_after_s: float = 10.0) -> TrainerClient:
        return TrainerClient(
            "http://api",
            transport=httpx.MockTransport(self.handle),
            reconnect={
                "first_delay_s": 0.5,
                "max_delay_s": 2.0,
                "give_up_after_s": give_up_after_s,
            },
            clock=lambda: self.now,
            sleep=self.sleep,
        )


def types(events: list[ServerEvent]) -> list[str]:
    return [event["event"].split(".")[2] for event in events]


def test_a_stream_that_ends_early_is_resumed_after_the_last_event() -> None:
    refused = httpx.ConnectError("refused")
    api = FakeApi([STARTED, refused, refused, 503, ": keepalive\n\n" + PROGRESS, COMPLETED])
    events = list(api.client().events("j"))
    assert types(events) == ["started", "progress", "completed"]
    assert api.last_event_ids == [None, "1-0", "1-0", "1-0", "1-0", "2-0"]
    assert api.sleeps == [0.5, 1.0, 2.0, 2.0, 0.5]


def test_a_given_last_event_id_is_where_the_stream_starts() -> None:
    api = FakeApi([COMPLETED])
    assert types(list(api.client().events("j", last_event_id="2-0"))) == ["completed"]
    assert api.last_event_ids == ["2-0"]


def test_reconnecting_gives_up_after_the_budget_with_the_last_error() -> None:
    api = FakeApi([STARTED, *[httpx.ConnectError("refused")] * 10])
    events = api.client(give_up_after_s=4.0).events("j")
    assert types([next(events)]) == ["started"]
    with pytest.raises(httpx.ConnectError):
        next(events)
    assert api.sleeps == [0.5, 1.0, 2.0]


def test_a_refusal_is_not_retried() -> None:
    api = FakeApi([404])
    with pytest.raises(ApiError) as caught:
        list(api.client().events("j"))
    assert caught.value.status == 404
    assert api.sleeps == []


def test_a_job_that_ended_without_a_terminal_event_is_read_once_more_then_left() -> None:
    api = FakeApi([STARTED, ""], status="failed")
    assert types(list(api.client().events("j"))) == ["started"]
    assert api.last_event_ids == [None, "1-0"]
    assert api.sleeps == []


def test_a_terminal_event_that_follows_the_ended_record_is_still_read() -> None:
    api = FakeApi([STARTED, COMPLETED], status="completed")
    assert types(list(api.client().events("j"))) == ["started", "completed"]


def test_a_stream_that_keeps_ending_while_the_job_runs_is_given_up() -> None:
    api = FakeApi([""] * 10)
    with pytest.raises(StreamEnded, match="job j"):
        list(api.client(give_up_after_s=2.0).events("j"))
    assert api.sleeps == [0.5, 1.0]
