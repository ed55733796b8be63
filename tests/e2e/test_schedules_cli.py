"""Schedules end to end: `model-trainer schedules create|list|show|pause|resume|delete` against
the API process, `model-trainer scheduler` firing a tiny training that a real worker runs to
completion, and the job listed on the schedule it came from."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.jobs import finished
from tests.support.processes import cli_process, start_api, stop, wait_for

from model_trainer import cli
from model_trainer.client import TrainerClient
from platform_core.json_types import JSONObject, load_json_object

TINY = [
    "model_family=char_lstm",
    "model_size=tiny",
    "corpus_path=corpus.txt",
    "max_steps=4",
    "batch_size=4",
    "max_seq_len=16",
    "device=cpu",
]


@pytest.fixture
def env(service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The services' environment, with 1 s as the shortest schedule interval."""
    for name in ("REDIS_URL", "ARTIFACTS_ROOT", "DATA_ROOT"):
        monkeypatch.setenv(name, service_env[name])
    return {**service_env, "MIN_SCHEDULE_INTERVAL_S": "1"}


@pytest.fixture
def url(env: dict[str, str], corpus_path: Path) -> Iterator[str]:
    api, base_url = start_api(env)
    worker = cli_process(["worker", "--queues", "train"], env)
    yield base_url
    stop(worker)
    stop(api)


def run(url: str, capsys: pytest.CaptureFixture[str], *args: str, code: int = 0) -> JSONObject:
    """`model-trainer --url URL ...` in this process: its JSON output, or its error line."""
    capsys.readouterr()
    assert cli.main(["--url", url, *args]) == code
    out, err = capsys.readouterr()
    return load_json_object(out) if code == 0 else {"stderr": err}


def test_create_fire_show_pause_resume_delete(
    url: str, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    created = run(url, capsys, "schedules", "create", "train", *TINY, "--every", "3")
    schedule_id = str(created["schedule_id"])
    assert (created["interval_s"], created["paused"], created["fired"]) == (3, False, 0)
    listed = run(url, capsys, "schedules", "list")
    assert listed["schedules"] == [created]
    refused = run(
        url, capsys, "schedules", "create", "train", *TINY, "--cron", "61 * * * *", code=2
    )
    assert "INVALID_CONFIG" in str(refused["stderr"])

    scheduler = cli_process(["scheduler"], env)
    client = TrainerClient(url)

    def fired() -> bool:
        firings = client.schedule(schedule_id)["firings"]
        return isinstance(firings, list) and len(firings) > 0

    wait_for(fired, timeout=60, what="the schedule's first firing")
    paused = run(url, capsys, "schedules", "pause", schedule_id)
    assert (paused["paused"], paused["next_fire_at"]) == (True, None)
    stop(scheduler)

    shown = run(url, capsys, "schedules", "show", schedule_id)
    firing = shown["firings"][-1] if isinstance(shown["firings"], list) else None
    assert isinstance(firing, dict) and firing["error"] is None
    job_id = str(firing["job_id"])
    assert finished(client, job_id)["steps"] == 4
    job = client.job(job_id)
    assert job["origin"] == {"kind": "schedule", "id": schedule_id, "trial": None}

    resumed = run(url, capsys, "schedules", "resume", schedule_id)
    assert resumed["paused"] is False
    deleted = run(url, capsys, "schedules", "delete", schedule_id)
    assert deleted["schedule_id"] == schedule_id
    gone = run(url, capsys, "schedules", "show", schedule_id, code=2)
    assert "SCHEDULE_NOT_FOUND" in str(gone["stderr"])
    assert run(url, capsys, "schedules", "list") == {"schedules": []}
    # The job stays after its schedule is gone.
    assert client.job(job_id)["status"] == "completed"


def test_create_takes_a_model_reference_and_refuses_bad_fields(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    unknown = run(
        url,
        capsys,
        "schedules",
        "create",
        "generate",
        "prompt_text=To",
        "--model",
        "nope@production",
        "--cron",
        "0 3 * * *",
        code=2,
    )
    assert "MODEL_NOT_FOUND" in str(unknown["stderr"])
    malformed = run(url, capsys, "schedules", "create", "train", "oops", "--every", "60", code=2)
    assert "expected key=value" in str(malformed["stderr"])
