"""Two machines, simulated: the API and workers share only Redis and the S3 store, each with a
local root of its own. A training on one worker is served by another, downloaded and loaded
by Hugging Face, and a training whose worker dies is resumed by a third from the store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from tests.conftest import SAMPLE_TEXT
from tests.support.jobs import finished
from tests.support.processes import cli_process, kill_tree, start_api, stop, wait_for
from tests.support.s3 import s3_env
from transformers import AutoModelForCausalLM

from model_trainer.client import TrainerClient
from model_trainer.settings import Settings
from model_trainer.storage.run_store import fetch_run, stored_checkpoints
from platform_core.json_types import JSONValue


@pytest.fixture
def roots(tmp_path: Path) -> dict[str, Path]:
    return {name: tmp_path / name for name in ("api", "a", "b", "c", "download")}


@pytest.fixture
def api(
    service_env: dict[str, str], s3_settings: Settings, roots: dict[str, Path]
) -> Iterator[TrainerClient]:
    process, base_url = start_api(s3_env(service_env, s3_settings, roots["api"]))
    client = TrainerClient(base_url)
    yield client
    client.close()
    stop(process)


def _train_body(corpus_id: str, run_id: str, max_steps: int) -> dict[str, JSONValue]:
    return {
        "model_family": "gpt2",
        "model_size": "tiny",
        "corpus_id": corpus_id,
        "run_id": run_id,
        "max_seq_len": 32,
        "batch_size": 8,
        "max_steps": max_steps,
        "learning_rate": 1e-2,
        "log_every_steps": 5,
        "checkpoint_every_steps": 10,
        "seed": 5,
        "device": "cpu",
    }


def test_two_machines_share_runs_only_through_the_store(
    api: TrainerClient,
    service_env: dict[str, str],
    s3_settings: Settings,
    roots: dict[str, Path],
) -> None:
    env = {name: s3_env(service_env, s3_settings, root) for name, root in roots.items()}
    worker_a = cli_process(["worker", "--queues", "train"], env["a"])
    worker_b = cli_process(["worker", "--queues", "infer"], env["b"])
    try:
        corpus_id = str(api.upload_corpus(SAMPLE_TEXT.encode())["corpus_id"])
        trained = finished(
            api, str(api.submit("train", _train_body(corpus_id, "one", 20))["job_id"])
        )
        assert trained["steps"] == 20
        assert (roots["a"] / "runs" / "one" / "model.safetensors").is_file()
        assert not (roots["b"] / "runs").exists()

        # Inference on the other machine: it fetches the run from the store.
        generated = finished(
            api,
            str(
                api.submit(
                    "generate",
                    {"run_id": "one", "prompt_text": "To be", "max_new_tokens": 8, "seed": 1},
                )["job_id"]
            ),
        )
        outputs = generated["outputs"]
        assert isinstance(outputs, list) and str(outputs[0]).startswith("To be")
        scored = finished(
            api, str(api.submit("score", {"run_id": "one", "text": "To be"})["job_id"])
        )
        assert isinstance(scored["loss"], float)
        evaluated = finished(api, str(api.submit("eval", {"run_id": "one"})["job_id"]))
        assert isinstance(evaluated["loss"], float)
        assert (roots["b"] / "runs" / "one" / "model.safetensors").is_file()

        # Downloaded from the store into a fresh folder, it is a Hugging Face model as it is.
        download: Settings = {**s3_settings, "artifacts_root": roots["download"]}
        model = AutoModelForCausalLM.from_pretrained(fetch_run(download, "one"))
        logits = model(torch.tensor([[1, 2, 3]])).logits
        assert logits.shape[:2] == (1, 3)

        # A worker that dies mid-training: another, with its own root, resumes from the store.
        job_id = str(api.submit("train", _train_body(corpus_id, "crashed", 200))["job_id"])
        wait_for(
            lambda: bool(stored_checkpoints(download, "crashed")), timeout=60, what="a checkpoint"
        )
        kill_tree(worker_a)
        killed = time.monotonic()
        worker_c = cli_process(["worker", "--queues", "train"], env["c"])
        try:
            wait_for(lambda: api.job(job_id)["status"] == "completed", timeout=90, what="resume")
        finally:
            stop(worker_c)
        assert time.monotonic() - killed < 90
    finally:
        stop(worker_b)
        stop(worker_a)
    record = api.job(job_id)
    assert record["attempts"] == 2
    result = record["result"]
    assert isinstance(result, dict)
    resumed_from = result["resumed_from_step"]
    assert isinstance(resumed_from, int) and 10 <= resumed_from < 200
    assert result["steps"] == 200
    assert (roots["c"] / "runs" / "crashed" / "model.safetensors").is_file()
