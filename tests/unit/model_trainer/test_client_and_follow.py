"""Parsing Server-Sent Events, resuming a stream that ended early, and the progress bar."""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import pytest

from model_trainer.client import ApiError, ServerEvent, StreamEnded, TrainerClient, parse_sse
from model_trainer.contracts.jobs import parse_queue
from model_trainer.errors import ModelTrainerError
from model_trainer.follow import clock, render
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


def at(seconds: int) -> str:
    """An event time `seconds` after the job started."""
    return f"2026-12-05T10:00:{seconds:02d}.000+00:00"


def progress_metrics(step: int, seconds: int, val_loss: float | None = None) -> str:
    return encode_trainer_metrics_event(
        make_progress_metrics_event(
            job_id="j",
            user_id=1,
            epoch=0,
            total_epochs=1,
            step=step,
            total_steps=100,
            loss=3.0 - step / 100,
            val_loss=val_loss,
            tokens_per_second=12345.6,
            ts=at(seconds),
        )
    )


def training_events() -> list[ServerEvent]:
    """A training's events as a follower reads them: job progress beside each report."""
    events = [
        encode_job_event(make_started_event(job_id="j", user_id=1, queue="train", ts=at(0))),
        encode_trainer_metrics_event(
            make_config_event(
                job_id="j",
                user_id=1,
                model_family="char_lstm",
                model_size="tiny",
                total_epochs=1,
                queue="train",
                num_params=1234,
                ts=at(1),
            )
        ),
        encode_job_event(
            make_progress_event(job_id="j", user_id=1, progress=0.1, message="step 10", ts=at(2))
        ),
        progress_metrics(10, 2),
        progress_metrics(50, 10, val_loss=2.75),
        encode_trainer_metrics_event(
            make_alert_event(
                job_id="j",
                user_id=1,
                kind="val_loss_spike",
                step=50,
                value=2.0,
                threshold=1.5,
                message="val loss spike: val_loss 2 is above 1.5 at step 50",
                ts=at(10),
            )
        ),
        progress_metrics(100, 20),
        encode_trainer_metrics_event(
            make_completed_metrics_event(
                job_id="j",
                user_id=1,
                loss=1.5,
                perplexity=4.5,
                artifact_path="/r",
                val_loss=1.6,
                stop_reason="early_stopping",
                ts=at(21),
            )
        ),
        encode_job_event(
            make_completed_event(job_id="j", user_id=1, result_id="j", result_bytes=9, ts=at(21))
        ),
    ]
    return [_event(data) for data in events]


def test_off_a_terminal_each_update_is_one_plain_line() -> None:
    out = io.StringIO()
    assert render(training_events(), out) is True
    assert "\r" not in out.getvalue()
    assert out.getvalue().splitlines() == [
        "started",
        "training char_lstm/tiny (1,234 parameters)",
        " 10.0%  step 10/100  elapsed 0:00:02  12,346 tok/s  loss 2.9000",
        " 50.0%  step 50/100  elapsed 0:00:10  ETA 0:00:10  12,346 tok/s  loss 2.5000  val 2.7500",
        "alert: val loss spike: val_loss 2 is above 1.5 at step 50",
        "100.0%  step 100/100  elapsed 0:00:20  ETA 0:00:00  12,346 tok/s  loss 2.0000  val 2.7500",
        "final loss 1.5000, val loss 1.6000 (early_stopping)",
        "completed in 0:00:21",
    ]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_a_live_bar_shows_the_same_figures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    out = Terminal()
    assert render(training_events(), out) is True
    text = out.getvalue()
    for shown in ("step 100/100", "100%", "elapsed 0:00:20", "12,346 tok/s", "val 2.7500"):
        assert shown in text
    assert "training char_lstm/tiny (1,234 parameters)" in text
    assert "completed in 0:00:21" in text


def test_other_jobs_show_their_progress_messages() -> None:
    events = [
        encode_job_event(make_started_event(job_id="j", user_id=1, queue="infer", ts=at(0))),
        encode_job_event(
            make_progress_event(job_id="j", user_id=1, progress=0.25, message="token 25", ts=at(1))
        ),
        encode_job_event(
            make_progress_event(job_id="j", user_id=1, progress=0.5, message="token 50", ts=at(3))
        ),
        encode_job_event(
            make_completed_event(job_id="j", user_id=1, result_id="j", result_bytes=9, ts=at(5))
        ),
    ]
    out = io.StringIO()
    assert render([_event(data) for data in events], out) is True
    assert out.getvalue().splitlines() == [
        "started",
        " 25.0%  token 25  elapsed 0:00:01",
        " 50.0%  token 50  elapsed 0:00:03  ETA 0:00:04",
        "completed in 0:00:05",
    ]


def test_events_without_a_time_are_timed_as_they_arrive() -> None:
    """A publisher older than `ts` still gets a line; no start seen means no elapsed time."""
    progress = make_progress_event(job_id="j", user_id=1, progress=0.5, message="half")
    del progress["ts"]
    out = io.StringIO()
    render([_event(encode_job_event(progress))], out)
    assert out.getvalue() == " 50.0%  half\n"


def test_render_reports_failure() -> None:
    failed = encode_job_event(
        make_failed_event(
            job_id="j", user_id=1, error_kind="user", code="TRAINING_CANCELLED", message="stop"
        )
    )
    out = io.StringIO()
    assert render([_event(failed)], out) is False
    assert out.getvalue() == "failed: TRAINING_CANCELLED (user): stop\n"


def test_a_completion_without_a_start_or_val_loss_says_what_it_knows() -> None:
    events = [
        encode_trainer_metrics_event(
            make_completed_metrics_event(
                job_id="j", user_id=1, loss=1.5, perplexity=4.5, artifact_path="/r"
            )
        ),
        encode_job_event(
            make_completed_event(job_id="j", user_id=1, result_id="j", result_bytes=9)
        ),
    ]
    out = io.StringIO()
    assert render([_event(data) for data in events], out) is True
    assert out.getvalue().splitlines() == ["final loss 1.5000 (completed)", "completed"]


def test_a_report_without_its_total_shows_the_step_alone() -> None:
    report = make_progress_metrics_event(
        job_id="j", user_id=1, epoch=0, total_epochs=1, step=5, loss=2.5
    )
    out = io.StringIO()
    render([_event(encode_trainer_metrics_event(report))], out)
    assert out.getvalue() == "  0.0%  step 5  loss 2.5000\n"


def test_clock_reads_hours_minutes_seconds() -> None:
    assert clock(0.4) == "0:00:00"
    assert clock(3725) == "1:02:05"
    assert clock(-3) == "0:00:00"


# ---------------------------------------------------------------- resuming a stream


def frame(entry_id: str, event_type: str) -> str:
    return f'id: {entry_id}\nevent: {event_type}\ndata: {{"type":"{event_type}"}}\n\n'


STARTED = frame("1-0", "trainer.job.started.v1")
PROGRESS = frame("2-0", "trainer.job.progress.v1")
COMPLETED = frame("3-0", "trainer.job.completed.v1")


class Dropped(httpx.SyncByteStream):
    """A response body cut off mid-stream, as when the API process is killed."""

    def __init__(self, sent: str) -> None:
        self.sent = sent

    def __iter__(self) -> Iterator[bytes]:
        yield self.sent.encode()
        raise httpx.RemoteProtocolError("peer closed connection without sending complete body")


# An SSE body, a status with an error body, a transport error, a body cut off, or a proxy's page.
Reply = str | int | Exception | Dropped | httpx.Response


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
        if isinstance(reply, Dropped):
            return httpx.Response(200, stream=reply)
        if isinstance(reply, httpx.Response):
            return reply
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


def test_an_api_killed_mid_stream_or_a_proxy_page_while_it_restarts_is_retried() -> None:
    """An API restart as a follower sees it: the stream breaks off, the port refuses, a proxy
    in front answers 502 with its own page, then the new process serves the rest."""
    proxy = httpx.Response(502, text="<html><body>Bad Gateway</body></html>")
    api = FakeApi(
        [Dropped(STARTED + "id: 2-"), httpx.ConnectError("refused"), proxy, PROGRESS + COMPLETED]
    )
    assert types(list(api.client().events("j"))) == ["started", "progress", "completed"]
    assert api.last_event_ids == [None, "1-0", "1-0", "1-0"]


def test_a_proxy_page_reads_as_its_status_and_first_words() -> None:
    error = ApiError.of(httpx.Response(502, text="<html>Bad Gateway</html>"))
    assert (error.status, error.code) == (502, "")
    assert str(error) == "HTTP 502: <html>Bad Gateway</html>"
    assert str(ApiError.of(httpx.Response(503))) == "HTTP 503: Service Unavailable"


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
