"""Two processes training one model (DDP over gloo on CPU) against a real redis-server: the loss
curve of one process with the same global batch, one publisher, one run, resume, a dead rank.

Tolerance: two ranks compute the same sums as one process in another order (each rank's mean
over half the batch, then the mean of the two; gradients summed by all-reduce), so float32
rounding (~1e-7 relative per operation) is the only difference. Over 20 Adam steps it stays far
below 1e-4 of the loss (about 3.0), while a real difference (another batch, another learning
rate, a rank that trained alone) moves the loss by 1e-2 or more within a few steps.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
import torch
from rq import Queue
from rq.serializers import JSONSerializer
from safetensors.torch import load_file
from tests.support.backends import train_run
from tests.support.processes import descendants
from tests.support.records import queued_record

from model_trainer.backends.char_lstm import BACKEND as CHAR_LSTM_BACKEND
from model_trainer.contracts.jobs import TrainJobPayload
from model_trainer.contracts.train_config import TRAIN_DEFAULTS, ModelTrainConfig, make_train_config
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.checkpoints import checkpoint_dirs, checkpoint_name
from model_trainer.storage.corpora import read_corpus
from model_trainer.storage.job_store import JobStore
from model_trainer.storage.run_metrics import METRICS_FILE, read_points
from model_trainer.tokenizers.char import CharTokenizer
from model_trainer.tokenizers.store import save_tokenizer
from model_trainer.worker.train_ranks import train_in_ranks
from model_trainer.worker.worker_entry import make_worker
from platform_core.json_types import load_json_object
from platform_workers.event_stream import read_events
from platform_workers.redis_conn import RedisClient

TOLERANCE = 1e-4
STEPS = 20


def _config(
    corpus: Path, processes: int, max_steps: int = STEPS, grad_accum_steps: int = 1
) -> ModelTrainConfig:
    return make_train_config(
        model_family="char_lstm",
        model_size="tiny",
        corpus_path=str(corpus),
        options={
            **TRAIN_DEFAULTS,
            "max_seq_len": 32,
            "batch_size": 8,
            "learning_rate": 1e-2,
            "max_steps": max_steps,
            "log_every_steps": 5,
            "checkpoint_every_steps": 10,
            "device": "cpu",
            "num_processes": processes,
            "grad_accum_steps": grad_accum_steps,
        },
    )


def _payload(job_id: str, run_id: str, cfg: ModelTrainConfig) -> TrainJobPayload:
    return {"job_id": job_id, "user_id": 1, "run_id": run_id, "config": cfg, "tokenizer_id": None}


def _tokenizer(settings: Settings, corpus: Path) -> CharTokenizer:
    """The corpus's own character tokenizer, as a train job stores it."""
    corpus_record = read_corpus(str(corpus), settings)
    tokenizer = CharTokenizer.build(corpus_record["text"], f"char-{corpus_record['sha256'][:16]}")
    save_tokenizer(tokenizer, settings)
    return tokenizer


def _one_process_run(settings: Settings, corpus: Path, grad_accum_steps: int = 1) -> Path:
    """The baseline: the same recipe and global batch, trained in this process."""
    tokenizer = _tokenizer(settings, corpus)
    cfg = _config(corpus, 1, grad_accum_steps=grad_accum_steps)
    _, _, run = train_run(CHAR_LSTM_BACKEND, settings, cfg, "run-one", tokenizer=tokenizer)
    return run


def _losses(run: Path) -> dict[int, float]:
    return {point["step"]: point["loss"] for point in read_points(run / METRICS_FILE)}


def _assert_same_curve(run: Path, baseline: Path) -> None:
    losses, expected = _losses(run), _losses(baseline)
    assert sorted(losses) == sorted(expected) == [5, 10, 15, 20]
    for step, loss in expected.items():
        assert abs(losses[step] - loss) < TOLERANCE, (step, losses[step], loss)
    assert expected[20] < expected[5] - 0.1  # it learned: the curve is not flat


def _assert_same_weights(run: Path, baseline: Path) -> None:
    weights, expected = (
        load_file(run / "model.safetensors"),
        load_file(baseline / "model.safetensors"),
    )
    assert weights.keys() == expected.keys()
    for name, tensor in expected.items():
        torch.testing.assert_close(weights[name], tensor, atol=TOLERANCE, rtol=TOLERANCE)


@pytest.fixture
def ddp_settings(settings: Settings, redis_url: str) -> Settings:
    return {**settings, "redis_url": redis_url}


@pytest.fixture
def worker_env(redis_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("ARTIFACTS_ROOT", str(settings["artifacts_root"]))
    monkeypatch.setenv("DATA_ROOT", str(settings["data_root"]))
    monkeypatch.setenv("DDP_TIMEOUT_S", "60")


@pytest.mark.usefixtures("worker_env")
def test_two_processes_in_a_train_worker_follow_one_process_and_publish_once(
    redis: RedisClient, settings: Settings, corpus_path: Path
) -> None:
    store = JobStore(redis)
    store.create(queued_record("ddp", "train", "run-two"))
    queue = Queue("train", connection=redis, serializer=JSONSerializer)
    payload = _payload("ddp", "run-two", _config(corpus_path, 2))
    queue.enqueue("model_trainer.worker.train_job.process_train_job", payload, job_id="ddp")
    assert make_worker("train", redis).work(burst=True)

    record = store.get("ddp")
    assert record is not None
    assert record["status"] == "completed", record["error"]
    assert record["result"] is not None
    assert record["result"]["steps"] == STEPS
    events = [load_json_object(data) for _, data in read_events(redis, "trainer", "ddp")]
    types = [event["type"] for event in events]
    for once in (
        "trainer.job.started.v1",
        "trainer.metrics.config.v1",
        "trainer.metrics.completed.v1",
        "trainer.job.completed.v1",
    ):
        assert types.count(once) == 1, (once, types)
    progress = [
        (event["step"], "val_loss" in event)
        for event in events
        if event["type"] == "trainer.metrics.progress.v1"
    ]
    assert progress and len(progress) == len(set(progress))  # rank 0 alone reported

    run = settings["artifacts_root"] / "runs" / "run-two"
    assert [path.name for path in checkpoint_dirs(run / "checkpoints")] == [checkpoint_name(10)]
    prepared = CHAR_LSTM_BACKEND.load(str(run), settings)
    assert prepared["model_size"] == "tiny"
    baseline = _one_process_run(settings, corpus_path)
    _assert_same_curve(run, baseline)
    _assert_same_weights(run, baseline)


def test_a_cancelled_two_process_training_resumes_from_its_checkpoint(
    redis: RedisClient, ddp_settings: Settings, corpus_path: Path
) -> None:
    """Rank 0 sees the cancel flag at the first report (step 5) and every rank stops there; a
    new job for the run resumes all ranks from that checkpoint and ends where one
    uninterrupted process does."""
    store = JobStore(redis)
    tokenizer = _tokenizer(ddp_settings, corpus_path)
    cfg = _config(corpus_path, 2, grad_accum_steps=2)  # DDP syncs once per step
    store.create(queued_record("first", "train", "run-resumed"))
    store.request_cancel("first")
    with pytest.raises(ModelTrainerError) as caught:
        train_in_ranks(_payload("first", "run-resumed", cfg), ddp_settings, tokenizer.tokenizer_id)
    assert caught.value.code == "TRAINING_CANCELLED"
    assert caught.value.details["step"] == 5
    run = ddp_settings["artifacts_root"] / "runs" / "run-resumed"
    assert [path.name for path in checkpoint_dirs(run / "checkpoints")] == [checkpoint_name(5)]

    store.create(queued_record("second", "train", "run-resumed"))
    outcome = train_in_ranks(
        _payload("second", "run-resumed", cfg), ddp_settings, tokenizer.tokenizer_id
    )
    assert (outcome["resumed_from_step"], outcome["steps"]) == (5, STEPS)
    baseline = _one_process_run(ddp_settings, corpus_path, grad_accum_steps=2)
    _assert_same_curve(run, baseline)
    _assert_same_weights(run, baseline)


def _kill_a_rank_once_training(run: Path, stop: threading.Event) -> None:
    """Once rank 0 reported a step, SIGKILL a rank (a child of this process, which is the
    launcher's agent here)."""
    while not stop.is_set():
        if (run / METRICS_FILE).is_file():
            for pid in descendants(os.getpid()):
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)
                    return
        time.sleep(0.05)


def test_a_dead_process_fails_the_training_instead_of_hanging(
    redis: RedisClient, ddp_settings: Settings, corpus_path: Path
) -> None:
    tokenizer = _tokenizer(ddp_settings, corpus_path)
    JobStore(redis).create(queued_record("crash", "train", "run-crash"))
    run = ddp_settings["artifacts_root"] / "runs" / "run-crash"
    stop = threading.Event()
    killer = threading.Thread(target=_kill_a_rank_once_training, args=(run, stop))
    killer.start()
    started = time.monotonic()
    try:
        with pytest.raises(ModelTrainerError) as caught:
            train_in_ranks(
                _payload(
                    "crash",
                    "run-crash",
                    _config(corpus_path, 2, max_steps=1_000_000),
                ),
                ddp_settings,
                tokenizer.tokenizer_id,
            )
    finally:
        stop.set()
        killer.join()
    assert caught.value.code == "TRAINING_PROCESS_FAILED"
    assert caught.value.details["rank"] in {0, 1}
    assert time.monotonic() - started < 60  # DDP_TIMEOUT_S (60 here) would be a hang


def test_machines_that_never_meet_fail_the_training_after_the_timeout(
    ddp_settings: Settings, corpus_path: Path
) -> None:
    """DDP_NNODES=2 and no second machine: the rendezvous gives up after DDP_TIMEOUT_S."""
    tokenizer = _tokenizer(ddp_settings, corpus_path)
    lonely: Settings = {
        **ddp_settings,
        "distributed": {"max_processes": 8, "timeout_s": 2, "nnodes": 2, "rdzv_endpoint": None},
    }
    started = time.monotonic()
    with pytest.raises(ModelTrainerError) as caught:
        train_in_ranks(
            _payload("alone", "run-alone", _config(corpus_path, 2)), lonely, tokenizer.tokenizer_id
        )
    assert caught.value.code == "TRAINING_PROCESS_FAILED"
    assert caught.value.details["nnodes"] == 2
    assert time.monotonic() - started < 30
