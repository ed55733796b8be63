"""Per-job logs end to end: real redis-server, API and worker processes (a spawned work horse for
training, the inference worker itself for generate), read back with `model-trainer logs`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.conftest import SAMPLE_TEXT
from tests.support.processes import cli_process, start_api, stop

from model_trainer import cli
from model_trainer.client import TrainerClient
from model_trainer.settings import Settings
from model_trainer.storage.runs import run_dir
from platform_core.json_types import JSONObject


@pytest.fixture
def url(service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name in ("REDIS_URL", "ARTIFACTS_ROOT", "DATA_ROOT"):
        monkeypatch.setenv(name, service_env[name])
    api, base_url = start_api(service_env)
    worker = cli_process(["worker", "--queues", "train,infer"], service_env)
    yield base_url
    stop(worker)
    stop(api)


def finished(client: TrainerClient, job_id: str) -> JSONObject:
    for _ in client.events(job_id):
        pass
    return client.job(job_id)


def printed_logs(url: str, job_id: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """What `model-trainer logs JOB_ID` prints, one entry per log line."""
    assert cli.main(["--url", url, "logs", job_id]) == 0
    return capsys.readouterr().out.splitlines()


def test_a_trained_and_a_failed_job_leave_their_log_lines(
    url: str, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    client = TrainerClient(url)
    corpus_id = client.upload_corpus(SAMPLE_TEXT.encode())["corpus_id"]
    train = {
        "model_family": "char_lstm",
        "model_size": "tiny",
        "corpus_id": corpus_id,
        "max_seq_len": 32,
        "batch_size": 8,
        "max_steps": 20,
        "device": "cpu",
    }
    accepted = client.submit("train", train)
    job_id, run_id = str(accepted["job_id"]), str(accepted["run_id"])
    assert finished(client, job_id)["status"] == "completed"

    printed = printed_logs(url, job_id, capsys)
    kept = client.job_logs(job_id, 1000)
    assert printed == [cli.format_log_line(line) for line in kept]
    first, last = kept[0], kept[-1]
    assert " INFO model_trainer.worker.job_utils: job started: train {" in printed[0]
    started = first.get("fields", {})
    config = started["config"]
    assert started["type"] == "train" and isinstance(config, dict)
    assert (config["model_family"], config["max_steps"], config["max_seq_len"]) == (
        "char_lstm",
        20,
        32,
    )
    assert " INFO model_trainer.worker.job_utils: job completed in " in printed[-1]
    summary = last.get("fields", {})
    assert (summary["run_id"], summary["steps"]) == (run_id, 20)
    assert {(line["job_id"], line.get("attempt")) for line in kept} == {(job_id, 1)}
    assert client.job_logs(job_id, 1) == [last]

    # The run loses its weights: generating from it fails in the inference worker.
    (run_dir(settings, run_id) / "model.safetensors").unlink()
    doomed = client.submit("generate", {"run_id": run_id, "prompt_text": "To", "seed": 1})
    doomed_id = str(doomed["job_id"])
    record = finished(client, doomed_id)
    error = record["error"]
    assert record["status"] == "failed" and isinstance(error, dict)

    printed = printed_logs(url, doomed_id, capsys)
    kept = client.job_logs(doomed_id)
    assert printed == [cli.format_log_line(line) for line in kept]
    assert " INFO model_trainer.worker.job_utils: job started: generate {" in printed[0]
    assert kept[0].get("fields", {})["type"] == "generate"
    assert f" ERROR model_trainer.worker.job_utils: job failed: {error['code']}: " in printed[-1]
    ending = kept[-1].get("fields", {})
    assert isinstance(ending.pop("duration_s"), float)
    assert ending == {
        "event": "job.failed",
        "code": error["code"],
        "kind": error["kind"],
        "message": error["message"],
    }
    client.close()
