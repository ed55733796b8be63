"""A training on a real RQ worker with the S3 store: published, then read by processes whose
local roots never saw it (the API's, and this test's own empty one)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from tests.conftest import SAMPLE_TEXT
from tests.support.jobs import finished
from tests.support.processes import cli_process, start_api, stop
from tests.support.s3 import s3_env

from model_trainer.client import TrainerClient
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.digests import file_sha256
from model_trainer.storage.runs import run_dir
from model_trainer.worker import model_cache
from platform_core.json_types import (
    JSONObject,
    JSONValue,
    require_int,
    require_object,
    require_str,
)


def objects(body: JSONObject, field: str) -> list[JSONObject]:
    items = body[field]
    assert isinstance(items, list)
    return [item for item in items if isinstance(item, dict)]


@pytest.fixture
def api(
    service_env: dict[str, str], s3_settings: Settings, tmp_path: Path
) -> Iterator[TrainerClient]:
    """The API and a train worker, each with a local root of its own, sharing Redis and S3."""
    api_process, base_url = start_api(s3_env(service_env, s3_settings, tmp_path / "api-root"))
    worker = cli_process(
        ["worker", "--queues", "train"], s3_env(service_env, s3_settings, tmp_path / "worker")
    )
    client = TrainerClient(base_url)
    yield client
    client.close()
    stop(worker)
    stop(api_process)


def test_a_run_trained_on_a_worker_is_read_from_the_store_elsewhere(
    api: TrainerClient, s3_settings: Settings, s3_endpoint: str, tmp_path: Path
) -> None:
    corpus_id = str(api.upload_corpus(SAMPLE_TEXT.encode())["corpus_id"])
    body: dict[str, JSONValue] = {
        "model_family": "char_lstm",
        "model_size": "tiny",
        "corpus_id": corpus_id,
        "run_id": "shared",
        "max_seq_len": 16,
        "batch_size": 8,
        "max_steps": 30,
        "checkpoint_every_steps": 10,
        "device": "cpu",
    }
    finished(api, str(api.submit("train", body)["job_id"]))

    # The API answers from the store: its own root holds metadata, never weights.
    manifest = api.run("shared")
    artifacts = require_object(manifest, "artifacts")
    assert [require_str(run, "run_id") for run in objects(api.runs(), "runs")] == ["shared"]
    checkpoints = objects(api.run_checkpoints("shared"), "checkpoints")
    assert [require_int(checkpoint, "step") for checkpoint in checkpoints] == [10, 20]
    assert objects(api.run_metrics("shared"), "points")
    assert not list((tmp_path / "api-root").rglob("*.safetensors"))

    # Another process, an empty root: the run is fetched, verified by sha256, and loads.
    reader: Settings = {**s3_settings, "artifacts_root": tmp_path / "reader"}
    model_cache.clear()
    _, prepared = model_cache.load_run("shared", reader)
    assert prepared["model_family"] == "char_lstm"
    local = run_dir(reader, "shared")
    for name in artifacts:
        assert file_sha256(local / name) == require_object(artifacts, name)["sha256"]

    # A tampered object in the store is refused before anything loads it.
    location = s3_settings["artifacts_s3"]
    assert location is not None
    boto3.client("s3", endpoint_url=s3_endpoint).put_object(
        Bucket=location["bucket"], Key="store/runs/shared/model.safetensors", Body=b"tampered"
    )
    model_cache.clear()
    with pytest.raises(ModelTrainerError) as refused:
        model_cache.load_run("shared", {**reader, "artifacts_root": tmp_path / "third"})
    assert refused.value.code == "ARTIFACT_CORRUPT"
