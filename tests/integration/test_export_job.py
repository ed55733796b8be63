"""The export job function against a real redis-server: its record, its events, its failures."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import load, load_file
from tests.support.backends import train_cfg, train_run
from tests.support.records import queued_record

from model_trainer.backends.char_lstm import BACKEND as CHAR_LSTM_BACKEND
from model_trainer.contracts.export import make_export_config
from model_trainer.contracts.jobs import ExportJobPayload
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.exports import bundle_path
from model_trainer.storage.job_store import JobStore
from model_trainer.worker import model_cache
from model_trainer.worker.export_job import process_export_job, run_export_job
from platform_core.json_types import load_json_object
from platform_workers.event_stream import read_events
from platform_workers.redis_conn import RedisClient

JOB_ID = "f" * 32


def _payload(run_id: str, step: int | None = None) -> ExportJobPayload:
    return {
        "job_id": JOB_ID,
        "user_id": 1,
        "run_id": run_id,
        "step": step,
        "config": make_export_config(),
    }


def _trained(settings: Settings, corpus_path: Path, run_id: str) -> Path:
    model_cache.clear()
    cfg = train_cfg("char_lstm", corpus_path, max_steps=2)
    return train_run(CHAR_LSTM_BACKEND, settings, cfg, run_id)[2]


def _event_types(redis: RedisClient) -> list[str]:
    return [
        str(load_json_object(data)["type"]) for _, data in read_events(redis, "trainer", JOB_ID)
    ]


def test_an_export_job_records_its_bundle_and_announces_completion(
    redis: RedisClient, settings: Settings, corpus_path: Path
) -> None:
    _trained(settings, corpus_path, "r-exp")
    store = JobStore(redis)
    store.create(queued_record(JOB_ID, "export", "r-exp"))
    result = run_export_job(_payload("r-exp"), settings=settings, redis=redis)
    bundle = bundle_path(settings, JOB_ID)
    assert result["sha256"] == hashlib.sha256(bundle.read_bytes()).hexdigest()
    assert result["bundle_bytes"] == bundle.stat().st_size
    assert result["run_id"] == "r-exp"
    record = store.get(JOB_ID)
    assert record is not None
    assert (record["status"], record["result"]) == ("completed", result)
    assert _event_types(redis)[-1] == "trainer.job.completed.v1"


def test_a_corrupted_run_fails_the_export_with_its_code(
    redis: RedisClient, settings: Settings, corpus_path: Path
) -> None:
    directory = _trained(settings, corpus_path, "r-bad")
    (directory / "model.safetensors").write_bytes(b"not weights")
    store = JobStore(redis)
    store.create(queued_record(JOB_ID, "export", "r-bad"))
    with pytest.raises(ModelTrainerError):
        run_export_job(_payload("r-bad"), settings=settings, redis=redis)
    record = store.get(JOB_ID)
    assert record is not None and record["error"] is not None
    assert (record["status"], record["error"]["code"]) == ("failed", "ARTIFACT_CORRUPT")
    assert _event_types(redis)[-1] == "trainer.job.failed.v1"
    assert not bundle_path(settings, JOB_ID).exists()


def test_the_rq_entry_point_reads_its_settings_from_the_environment(
    redis: RedisClient,
    redis_url: str,
    settings: Settings,
    corpus_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("ARTIFACTS_ROOT", str(settings["artifacts_root"]))
    monkeypatch.setenv("DATA_ROOT", str(settings["data_root"]))
    _trained(settings, corpus_path, "r-env")
    JobStore(redis).create(queued_record(JOB_ID, "export", "r-env"))
    assert process_export_job(_payload("r-env"))["run_id"] == "r-env"
    assert bundle_path(settings, JOB_ID).is_file()


def test_a_checkpoint_export_bundles_the_checkpoints_weights(
    redis: RedisClient, settings: Settings, corpus_path: Path
) -> None:
    model_cache.clear()
    cfg = train_cfg("char_lstm", corpus_path, max_steps=6)
    cfg["checkpoint_every_steps"] = 3
    directory = train_run(CHAR_LSTM_BACKEND, settings, cfg, "r-ckpt")[2]
    JobStore(redis).create(queued_record(JOB_ID, "export", "r-ckpt"))
    run_export_job(_payload("r-ckpt", step=3), settings=settings, redis=redis)
    with tarfile.open(bundle_path(settings, JOB_ID)) as archive:
        member = archive.extractfile("r-ckpt/model/model.safetensors")
        assert member is not None
        bundled = load(member.read())
    checkpoint = load_file(str(directory / "checkpoints" / "step_000000003" / "model.safetensors"))
    final = load_file(str(directory / "model.safetensors"))
    assert bundled.keys() == checkpoint.keys()
    assert all(torch.equal(bundled[k], checkpoint[k]) for k in bundled)
    assert not all(torch.equal(bundled[k], final[k]) for k in bundled)
