"""Tokenizer jobs against a real redis-server, and training with the tokenizer they store."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from tests.support.records import queued_record

from model_trainer.contracts.defaults import make_generate_config, make_tokenizer_config
from model_trainer.contracts.jobs import JobRecord, TokenizerJobPayload, TrainJobPayload
from model_trainer.contracts.tokenizer import TokenizerKind
from model_trainer.contracts.train_config import TRAIN_DEFAULTS, make_train_config
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.job_store import JobStore
from model_trainer.storage.runs import run_dir
from model_trainer.tokenizers.store import load_tokenizer, tokenizer_exists
from model_trainer.worker import model_cache
from model_trainer.worker.generate_job import run_generate_job
from model_trainer.worker.tokenizer_job import process_tokenizer_job, run_tokenizer_job
from model_trainer.worker.train_job import run_train_job
from platform_core.json_types import load_json_object
from platform_workers.event_stream import read_events
from platform_workers.redis_conn import RedisClient


def _tokenizer_payload(
    job_id: str, corpus: Path, kind: TokenizerKind = "bpe", vocab_size: int | None = 300
) -> TokenizerJobPayload:
    config = make_tokenizer_config(
        corpus_path=str(corpus), tokenizer_id=f"{kind}-{job_id}", kind=kind, vocab_size=vocab_size
    )
    return {"job_id": job_id, "user_id": 1, "config": config}


def _train_payload(job_id: str, corpus: Path, tokenizer_id: str | None) -> TrainJobPayload:
    config = make_train_config(
        model_family="char_lstm",
        model_size="tiny",
        corpus_path=str(corpus),
        options={
            **TRAIN_DEFAULTS,
            "max_seq_len": 16,
            "batch_size": 8,
            "max_steps": 10,
            "device": "cpu",
        },
    )
    return {
        "job_id": job_id,
        "user_id": 1,
        "run_id": f"run-{job_id}",
        "config": config,
        "tokenizer_id": tokenizer_id,
    }


def _event_types(redis: RedisClient, job_id: str) -> list[str]:
    return [
        str(load_json_object(data)["type"]) for _, data in read_events(redis, "trainer", job_id)
    ]


def _run_tokenizer(
    redis: RedisClient, settings: Settings, payload: TokenizerJobPayload
) -> JobRecord:
    JobStore(redis).create(queued_record(payload["job_id"], "tokenizer", None))
    run_tokenizer_job(payload, settings=settings, redis=redis)
    record = JobStore(redis).get(payload["job_id"])
    assert record is not None
    return record


def test_a_bpe_tokenizer_job_stores_the_tokenizer_and_reports_it(
    redis: RedisClient, settings: Settings, corpus_path: Path
) -> None:
    record = _run_tokenizer(redis, settings, _tokenizer_payload("k1", corpus_path))
    assert record["status"] == "completed"
    assert record["run_id"] is None
    assert record["result"] == {
        "tokenizer_id": "bpe-k1",
        "kind": "bpe",
        "vocab_size": 300,
        "coverage": 1.0,
    }
    stored = load_tokenizer("bpe-k1", settings)
    text = corpus_path.read_text(encoding="utf-8")
    assert stored.decode(stored.encode(text)) == text
    assert _event_types(redis, "k1") == ["trainer.job.completed.v1"]


def test_a_capped_char_tokenizer_reports_its_coverage(
    redis: RedisClient, settings: Settings, corpus_path: Path
) -> None:
    payload = _tokenizer_payload("k2", corpus_path, kind="char", vocab_size=13)
    record = _run_tokenizer(redis, settings, payload)
    result = record["result"]
    assert result is not None
    assert (result["kind"], result["vocab_size"]) == ("char", 13)
    coverage = result["coverage"]
    assert isinstance(coverage, float) and 0.5 < coverage < 1.0
    assert load_tokenizer("char-k2", settings).coverage(corpus_path.read_text()) == coverage


def test_a_cancelled_tokenizer_job_stores_nothing(
    redis: RedisClient, settings: Settings, corpus_path: Path
) -> None:
    JobStore(redis).create(queued_record("k3", "tokenizer", None))
    JobStore(redis).request_cancel("k3")
    with pytest.raises(ModelTrainerError) as caught:
        run_tokenizer_job(_tokenizer_payload("k3", corpus_path), settings=settings, redis=redis)
    assert caught.value.code == "TRAINING_CANCELLED"
    record = JobStore(redis).get("k3")
    assert record is not None and record["status"] == "cancelled"
    assert not tokenizer_exists("bpe-k3", settings)


def test_a_missing_corpus_fails_the_tokenizer_job(redis: RedisClient, settings: Settings) -> None:
    JobStore(redis).create(queued_record("k4", "tokenizer", None))
    payload = _tokenizer_payload("k4", settings["data_root"] / "missing.txt")
    with pytest.raises(ModelTrainerError):
        run_tokenizer_job(payload, settings=settings, redis=redis)
    record = JobStore(redis).get("k4")
    assert record is not None and record["error"] is not None
    assert (record["status"], record["error"]["code"]) == ("failed", "CORPUS_NOT_FOUND")


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
    JobStore(redis).create(queued_record("k5", "tokenizer", None))
    result = process_tokenizer_job(_tokenizer_payload("k5", corpus_path, kind="char"))
    assert result["tokenizer_id"] == "char-k5"
    assert tokenizer_exists("char-k5", settings)


def test_training_with_a_stored_bpe_tokenizer_then_generating(
    redis: RedisClient, settings: Settings, corpus_path: Path
) -> None:
    _run_tokenizer(redis, settings, _tokenizer_payload("k6", corpus_path))
    store = JobStore(redis)
    store.create(queued_record("t6", "train", "run-t6"))
    run_train_job(_train_payload("t6", corpus_path, "bpe-k6"), settings=settings, redis=redis)
    manifest = orjson.loads((run_dir(settings, "run-t6") / "manifest.json").read_bytes())
    assert manifest["tokenizer_id"] == "bpe-k6"
    model_cache.clear()
    store.create(queued_record("g6", "generate", "run-t6"))
    generated = run_generate_job(
        {
            "job_id": "g6",
            "user_id": 1,
            "run_id": "run-t6",
            "step": None,
            "config": make_generate_config(prompt_text="To be", max_new_tokens=8, seed=1),
        },
        settings=settings,
        redis=redis,
    )
    outputs = generated["outputs"]
    assert isinstance(outputs, list) and str(outputs[0]).startswith("To be")
    _, prepared = model_cache.load_run("run-t6", settings)
    assert prepared["tokenizer"].kind == "bpe"


def test_training_without_a_tokenizer_stores_the_corpus_char_tokenizer(
    redis: RedisClient, settings: Settings, corpus_path: Path
) -> None:
    JobStore(redis).create(queued_record("t7", "train", "run-t7"))
    run_train_job(_train_payload("t7", corpus_path, None), settings=settings, redis=redis)
    manifest = orjson.loads((run_dir(settings, "run-t7") / "manifest.json").read_bytes())
    tokenizer = load_tokenizer(manifest["tokenizer_id"], settings)
    assert tokenizer.kind == "char"
    assert tokenizer.coverage(corpus_path.read_text(encoding="utf-8")) == 1.0


def test_training_with_an_unknown_tokenizer_fails_coded(
    redis: RedisClient, settings: Settings, corpus_path: Path
) -> None:
    JobStore(redis).create(queued_record("t8", "train", "run-t8"))
    with pytest.raises(ModelTrainerError):
        run_train_job(_train_payload("t8", corpus_path, "bpe-gone"), settings=settings, redis=redis)
    record = JobStore(redis).get("t8")
    assert record is not None and record["error"] is not None
    assert (record["error"]["code"], record["error"]["kind"]) == ("TOKENIZER_NOT_FOUND", "user")
