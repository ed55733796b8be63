"""Parsing Server-Sent Events and rendering them as a progress bar."""

from __future__ import annotations

import io

import pytest

from model_trainer.client import ApiError, ServerEvent, parse_sse
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
            make_completed_metrics_event(
                job_id="j", user_id=1, loss=1.5, perplexity=4.5, artifact_path="/r", val_loss=1.6
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
    assert "final loss 1.5000, val loss 1.6000" in text
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
