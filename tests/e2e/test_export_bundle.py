"""Export over the service: train a tiny run, export it with the CLI and over HTTP, open the
tarball and check every file against SHA256SUMS."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import pytest
from tests.conftest import SAMPLE_TEXT
from tests.support.exports import BUNDLE_FILES

from model_trainer import cli
from model_trainer.client import ApiError, TrainerClient
from model_trainer.settings import Settings
from model_trainer.storage.api_keys import create_key
from model_trainer.storage.runs import run_dir
from platform_core.json_types import JSONObject, load_json_object
from platform_workers.redis_conn import RedisClient


def _train(client: TrainerClient) -> str:
    corpus = client.upload_corpus(SAMPLE_TEXT.encode())
    accepted = client.submit(
        "train",
        {
            "model_family": "char_lstm",
            "model_size": "tiny",
            "corpus_id": corpus["corpus_id"],
            "max_seq_len": 32,
            "batch_size": 8,
            "max_steps": 10,
            "device": "cpu",
        },
    )
    assert client.wait(str(accepted["job_id"]))["status"] == "completed"
    return str(accepted["run_id"])


def _printed(text: str) -> JSONObject:
    """The last JSON document a command printed."""
    return load_json_object(text[text.rindex("{\n") :])


def _check_bundle(bundle: Path, run_id: str, tmp_path: Path) -> None:
    with tarfile.open(bundle) as archive:
        names = sorted(m.name for m in archive.getmembers() if m.isfile())
        archive.extractall(tmp_path / "x", filter="data")
    assert names == [f"{run_id}/{name}" for name in BUNDLE_FILES]
    top = tmp_path / "x" / run_id
    sums = (top / "SHA256SUMS").read_text().splitlines()
    assert len(sums) == len(BUNDLE_FILES) - 1
    for line in sums:
        digest, _, name = line.partition("  ")
        assert hashlib.sha256((top / name).read_bytes()).hexdigest() == digest


def test_export_with_the_cli_then_download_over_http(
    url: str,
    redis: RedisClient,
    settings: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = TrainerClient(url)
    run_id = _train(client)

    out = tmp_path / "bundle.tar.gz"
    assert cli.main(["--url", url, "export", run_id, "--out", str(out), "--follow"]) == 0
    printed = capsys.readouterr().out
    assert "completed" in printed
    downloaded = _printed(printed)
    assert downloaded["bundle"] == str(out)
    assert downloaded["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert downloaded["bytes"] == out.stat().st_size
    _check_bundle(out, run_id, tmp_path)

    assert cli.main(["--url", url, "export", run_id, "--no-wait"]) == 0
    job_id = str(_printed(capsys.readouterr().out)["job_id"])
    record = client.wait(job_id)
    assert record["status"] == "completed"
    result = record["result"]
    assert isinstance(result, dict)
    again = tmp_path / "again.tar.gz"
    assert client.download_bundle(job_id, again) == result["sha256"]
    assert again.stat().st_size == result["bundle_bytes"]

    bob = TrainerClient(url, api_key=create_key(redis, "bob")["key"])
    with pytest.raises(ApiError) as caught:
        bob.download_bundle(job_id, tmp_path / "stolen.tar.gz")
    assert (caught.value.status, caught.value.code) == (404, "JOB_NOT_FOUND")
    assert not (tmp_path / "stolen.tar.gz").exists()
    with pytest.raises(ApiError) as refused:
        bob.submit("export", {"run_id": run_id})
    assert (refused.value.status, refused.value.code) == (404, "MODEL_NOT_FOUND")

    # A run whose weights changed since training fails the export; the CLI says so and exits 1.
    (run_dir(settings, run_id) / "model.safetensors").write_bytes(b"tampered")
    never = tmp_path / "never.tar.gz"
    assert cli.main(["--url", url, "export", run_id, "--out", str(never)]) == 1
    assert "ended failed" in capsys.readouterr().err
    assert not never.exists()
