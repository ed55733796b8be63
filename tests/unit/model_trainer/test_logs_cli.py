"""`model-trainer logs JOB_ID [--tail N]` and TrainerClient.job_logs, against a mock transport."""

from __future__ import annotations

import httpx
import pytest

from model_trainer import cli
from model_trainer.client import ApiError, TrainerClient
from platform_core.job_logs import JobLogLine, encode_log_line
from platform_core.json_types import JSONObject, load_json_object

STARTED: JobLogLine = {
    "ts": "2026-11-01T10:31:05.123+00:00",
    "level": "INFO",
    "logger": "model_trainer.worker.job_utils",
    "message": "job started: train",
    "job_id": "j1",
    "attempt": 1,
    "fields": {"type": "train", "config": {"max_steps": 40}},
}
WARNED: JobLogLine = {
    "ts": "2026-11-01T10:31:06.000+00:00",
    "level": "WARNING",
    "logger": "py.warnings",
    "message": "lr looks high",
    "job_id": "j1",
}


def serving(body: JSONObject, status: int = 200) -> tuple[TrainerClient, list[httpx.Request]]:
    """A client whose API answers every request with `body`; the requests are kept."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json=body)

    client = TrainerClient("http://api", api_key="k", transport=httpx.MockTransport(handle))
    return client, seen


def answer(*lines: JobLogLine) -> JSONObject:
    encoded = [load_json_object(encode_log_line(line)) for line in lines]
    return {"job_id": "j1", "lines": list(encoded), "total_lines": len(lines)}


def test_job_logs_asks_for_the_tail_and_validates_each_line() -> None:
    client, seen = serving(answer(STARTED, WARNED))
    assert client.job_logs("j1", 2) == [STARTED, WARNED]
    assert seen[0].url.path == "/v1/jobs/j1/logs"
    assert seen[0].url.params["tail"] == "2"
    assert seen[0].headers["authorization"] == "Bearer k"


def test_job_logs_raises_the_coded_refusal() -> None:
    refusal: JSONObject = {"error": {"code": "JOB_NOT_FOUND", "message": "no", "details": {}}}
    client, _ = serving(refusal, status=404)
    with pytest.raises(ApiError) as caught:
        client.job_logs("nope")
    assert (caught.value.status, caught.value.code) == (404, "JOB_NOT_FOUND")


def test_a_line_prints_as_ts_level_logger_message_then_its_fields() -> None:
    assert cli.format_log_line(STARTED) == (
        "2026-11-01T10:31:05.123+00:00 INFO model_trainer.worker.job_utils: job started: train"
        ' {"type":"train","config":{"max_steps":40}}'
    )
    assert cli.format_log_line(WARNED) == (
        "2026-11-01T10:31:06.000+00:00 WARNING py.warnings: lr looks high"
    )


def test_the_logs_command_prints_one_line_per_log_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client, seen = serving(answer(STARTED, WARNED))
    monkeypatch.setattr(cli, "_client", lambda args: client)
    assert cli.main(["logs", "j1", "--tail", "5"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        cli.format_log_line(STARTED),
        cli.format_log_line(WARNED),
    ]
    assert seen[0].url.params["tail"] == "5"


def test_a_malformed_answer_exits_2_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client, _ = serving({"job_id": "j1", "lines": [{"level": "INFO"}]})
    monkeypatch.setattr(cli, "_client", lambda args: client)
    assert cli.main(["logs", "j1"]) == 2
    assert "field 'ts' is required" in capsys.readouterr().err
