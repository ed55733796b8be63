"""Submitting jobs: a valid request is recorded then enqueued; an invalid one leaves no trace."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import fakeredis
import pytest
from fastapi.testclient import TestClient
from rq.job import Job
from rq.serializers import JSONSerializer

from model_trainer.api.submit import QUEUE_RETRIES
from model_trainer.contracts.defaults import (
    make_eval_config,
    make_generate_config,
    make_score_config,
    make_tokenizer_config,
)
from model_trainer.contracts.jobs import (
    JOB_TYPES,
    EvalJobPayload,
    GenerateJobPayload,
    JobRecord,
    JobType,
    ScoreJobPayload,
    TokenizerJobPayload,
    TrainJobPayload,
)
from model_trainer.contracts.train_config import make_train_config, train_defaults
from model_trainer.settings import DEFAULT_JOB_TIMEOUT_S, Settings
from model_trainer.storage.job_store import JobStore
from model_trainer.storage.owners import Owned
from model_trainer.storage.runs import RunManifest, run_dir, write_manifest
from model_trainer.tokenizers.char import CharTokenizer
from model_trainer.tokenizers.store import save_tokenizer
from platform_core.json_types import JSONObject, JSONValue

TRAIN: JSONObject = {"model_family": "char_lstm", "model_size": "tiny", "corpus_path": "corpus.txt"}
EVAL: JSONObject = {"run_id": "r1"}
SCORE: JSONObject = {"run_id": "r1", "text": "To be"}
GENERATE: JSONObject = {"run_id": "r1", "prompt_text": "To"}
TOKENIZER: JSONObject = {"corpus_path": "corpus.txt", "vocab_size": 300}
BASE: dict[str, JSONObject] = {
    "train": TRAIN,
    "eval": EVAL,
    "score": SCORE,
    "generate": GENERATE,
    "tokenizer": TOKENIZER,
    "export": {"run_id": "r1"},
}
DROP = object()


def fetch_job(redis: fakeredis.FakeRedis, job_id: str) -> Job:
    return Job.fetch(job_id, connection=redis, serializer=JSONSerializer)


def accepted(client: TestClient, job_type: str, body: JSONObject) -> dict[str, JSONValue]:
    response = client.post(f"/v1/jobs/{job_type}", json=body)
    assert response.status_code == 202, response.text
    answer: dict[str, JSONValue] = response.json()
    return answer


def test_train_is_recorded_then_enqueued_on_the_train_queue(
    client: TestClient,
    redis: fakeredis.FakeRedis,
    corpus_path: Path,
    queue_lengths: Callable[[], dict[str, int]],
) -> None:
    body = accepted(client, "train", {**TRAIN, "max_steps": 5, "learning_rate": 1})
    job_id = str(body["job_id"])
    assert body == {
        "job_id": job_id,
        "type": "train",
        "status": "queued",
        "queue": "train",
        "run_id": f"run-{job_id}",
    }
    record = JobStore(redis).get(job_id)
    assert record is not None
    assert (record["status"], record["attempts"], record["progress"]) == ("queued", 0, 0.0)
    assert (record["user_id"], record["type"], record["queue"]) == (1, "train", "train")
    assert record["run_id"] == f"run-{job_id}"
    assert queue_lengths() == {"train": 1, "infer": 0}
    job = fetch_job(redis, job_id)
    assert job.func_name == "model_trainer.worker.train_job.process_train_job"
    expected: TrainJobPayload = {
        "job_id": job_id,
        "user_id": 1,
        "run_id": f"run-{job_id}",
        "config": make_train_config(
            model_family="char_lstm",
            model_size="tiny",
            corpus_path=str(corpus_path.resolve()),
            options={**train_defaults("char_lstm"), "max_steps": 5, "learning_rate": 1.0},
        ),
        "tokenizer_id": None,
    }
    assert list(job.args) == [expected]
    assert job.kwargs == {}
    assert job.timeout == DEFAULT_JOB_TIMEOUT_S["train"]
    assert job.retries_left == 2


def test_train_takes_an_explicit_run_id_and_an_uploaded_corpus(
    client: TestClient, redis: fakeredis.FakeRedis, settings: Settings
) -> None:
    upload = client.post("/v1/corpora", content=b"some text to learn from\n")
    corpus_id = upload.json()["corpus_id"]
    body = accepted(
        client,
        "train",
        {
            "model_family": "char_lstm",
            "model_size": "small",
            "corpus_id": corpus_id,
            "run_id": "mine",
        },
    )
    assert body["run_id"] == "mine"
    (payload,) = fetch_job(redis, str(body["job_id"])).args
    assert payload["run_id"] == "mine"
    assert payload["config"]["model_size"] == "small"
    corpus = settings["artifacts_root"] / "corpora" / f"{corpus_id}.txt"
    assert payload["config"]["corpus_path"] == str(corpus)


def test_train_into_an_unfinished_run_resumes_it(
    client: TestClient,
    settings: Settings,
    corpus_path: Path,
    own: Callable[[Owned, str], None],
) -> None:
    own("run", "cancelled-run")
    checkpoints = run_dir(settings, "cancelled-run") / "checkpoints"
    checkpoints.mkdir(parents=True)
    body = accepted(client, "train", {**TRAIN, "run_id": "cancelled-run"})
    assert body["run_id"] == "cancelled-run"


def test_train_path_may_be_absolute_inside_the_data_root(
    client: TestClient, redis: fakeredis.FakeRedis, corpus_path: Path
) -> None:
    body = accepted(client, "train", {**TRAIN, "corpus_path": str(corpus_path)})
    (payload,) = fetch_job(redis, str(body["job_id"])).args
    assert payload["config"]["corpus_path"] == str(corpus_path.resolve())


def test_eval_defaults_to_the_runs_training_corpus(
    client: TestClient,
    redis: fakeredis.FakeRedis,
    trained_run: RunManifest,
    queue_lengths: Callable[[], dict[str, int]],
) -> None:
    body = accepted(client, "eval", {"run_id": "r1", "split": "all", "max_batches": 3})
    job_id = str(body["job_id"])
    assert body == {
        "job_id": job_id,
        "type": "eval",
        "status": "queued",
        "queue": "infer",
        "run_id": "r1",
    }
    assert queue_lengths() == {"train": 0, "infer": 1}
    job = fetch_job(redis, job_id)
    assert job.func_name == "model_trainer.worker.eval_job.process_eval_job"
    expected: EvalJobPayload = {
        "job_id": job_id,
        "user_id": 1,
        "run_id": "r1",
        "step": None,
        "config": make_eval_config(
            corpus_path=trained_run["config"]["corpus_path"], split="all", max_batches=3
        ),
    }
    assert list(job.args) == [expected]
    assert job.timeout == DEFAULT_JOB_TIMEOUT_S["eval"]
    assert job.retries_left is None


def test_eval_on_another_corpus(
    client: TestClient,
    redis: fakeredis.FakeRedis,
    settings: Settings,
    trained_run: RunManifest,
) -> None:
    other = settings["data_root"] / "sub" / "other.txt"
    other.parent.mkdir()
    other.write_text("other words\n", encoding="utf-8")
    body = accepted(client, "eval", {"run_id": "r1", "corpus_path": "sub/other.txt"})
    (payload,) = fetch_job(redis, str(body["job_id"])).args
    assert payload["config"]["corpus_path"] == str(other.resolve())


def test_score_is_enqueued_with_its_config(
    client: TestClient,
    redis: fakeredis.FakeRedis,
    trained_run: RunManifest,
    queue_lengths: Callable[[], dict[str, int]],
) -> None:
    body = accepted(client, "score", {**SCORE, "detail_level": "per_char", "top_k": 3})
    job_id = str(body["job_id"])
    assert (body["type"], body["queue"], body["run_id"]) == ("score", "infer", "r1")
    assert queue_lengths() == {"train": 0, "infer": 1}
    job = fetch_job(redis, job_id)
    assert job.func_name == "model_trainer.worker.score_job.process_score_job"
    expected: ScoreJobPayload = {
        "job_id": job_id,
        "user_id": 1,
        "run_id": "r1",
        "step": None,
        "config": make_score_config(text="To be", detail_level="per_char", top_k=3),
    }
    assert list(job.args) == [expected]


def test_score_reads_a_file_under_the_data_root(
    client: TestClient, redis: fakeredis.FakeRedis, corpus_path: Path, trained_run: RunManifest
) -> None:
    body = accepted(client, "score", {"run_id": "r1", "path": "corpus.txt"})
    (payload,) = fetch_job(redis, str(body["job_id"])).args
    assert payload["config"]["path"] == str(corpus_path.resolve())
    assert payload["config"]["text"] is None


def test_generate_is_enqueued_with_its_config(
    client: TestClient,
    redis: fakeredis.FakeRedis,
    trained_run: RunManifest,
    queue_lengths: Callable[[], dict[str, int]],
) -> None:
    body = accepted(
        client,
        "generate",
        {**GENERATE, "seed": 7, "num_return_sequences": 2, "top_p": 0.9, "stop_on_eos": False},
    )
    job_id = str(body["job_id"])
    assert (body["type"], body["queue"], body["run_id"]) == ("generate", "infer", "r1")
    assert queue_lengths() == {"train": 0, "infer": 1}
    job = fetch_job(redis, job_id)
    assert job.func_name == "model_trainer.worker.generate_job.process_generate_job"
    expected: GenerateJobPayload = {
        "job_id": job_id,
        "user_id": 1,
        "run_id": "r1",
        "step": None,
        "config": make_generate_config(
            prompt_text="To", seed=7, num_return_sequences=2, top_p=0.9, stop_on_eos=False
        ),
    }
    assert list(job.args) == [expected]


def test_generate_reads_a_prompt_file(
    client: TestClient, redis: fakeredis.FakeRedis, corpus_path: Path, trained_run: RunManifest
) -> None:
    body = accepted(client, "generate", {"run_id": "r1", "prompt_path": "corpus.txt"})
    (payload,) = fetch_job(redis, str(body["job_id"])).args
    assert payload["config"]["prompt_path"] == str(corpus_path.resolve())


@pytest.fixture
def stored_tokenizer(settings: Settings, own: Callable[[Owned, str], None]) -> str:
    """A tokenizer in the store, as a tokenizer job leaves it."""
    own("tokenizer", "char-stored")
    return save_tokenizer(CharTokenizer.build("To be", "char-stored"), settings).name


def test_tokenizer_is_recorded_then_enqueued_on_the_train_queue(
    client: TestClient,
    redis: fakeredis.FakeRedis,
    corpus_path: Path,
    queue_lengths: Callable[[], dict[str, int]],
) -> None:
    body = accepted(client, "tokenizer", TOKENIZER)
    job_id = str(body["job_id"])
    # A tokenizer job makes no run; its id is in the payload now and in the result later.
    assert body == {
        "job_id": job_id,
        "type": "tokenizer",
        "status": "queued",
        "queue": "train",
        "run_id": None,
    }
    record = JobStore(redis).get(job_id)
    assert record is not None
    assert (record["type"], record["queue"], record["run_id"]) == ("tokenizer", "train", None)
    assert queue_lengths() == {"train": 1, "infer": 0}
    job = fetch_job(redis, job_id)
    assert job.func_name == "model_trainer.worker.tokenizer_job.process_tokenizer_job"
    expected: TokenizerJobPayload = {
        "job_id": job_id,
        "user_id": 1,
        "config": make_tokenizer_config(
            corpus_path=str(corpus_path.resolve()), tokenizer_id=f"bpe-{job_id}", vocab_size=300
        ),
    }
    assert list(job.args) == [expected]
    assert job.retries_left == QUEUE_RETRIES["train"]


def test_tokenizer_takes_a_kind_an_id_and_an_uploaded_corpus(
    client: TestClient, redis: fakeredis.FakeRedis, settings: Settings
) -> None:
    corpus_id = client.post("/v1/corpora", content=b"some text\n").json()["corpus_id"]
    body = accepted(
        client, "tokenizer", {"kind": "char", "corpus_id": corpus_id, "tokenizer_id": "mine"}
    )
    (payload,) = fetch_job(redis, str(body["job_id"])).args
    assert payload["config"] == {
        "kind": "char",
        "corpus_path": str(settings["artifacts_root"] / "corpora" / f"{corpus_id}.txt"),
        "tokenizer_id": "mine",
        "vocab_size": 1_000_000,
    }


def test_train_with_a_stored_tokenizer_carries_its_id(
    client: TestClient, redis: fakeredis.FakeRedis, stored_tokenizer: str, corpus_path: Path
) -> None:
    body = accepted(client, "train", {**TRAIN, "tokenizer_id": stored_tokenizer})
    (payload,) = fetch_job(redis, str(body["job_id"])).args
    assert payload["tokenizer_id"] == "char-stored"


@pytest.fixture
def corpora(settings: Settings, corpus_path: Path, tmp_path: Path) -> None:
    """Files the invalid-request table names: empty, blank, oversized, outside, a symlink out."""
    data = settings["data_root"]
    (data / "empty.txt").write_bytes(b"")
    (data / "blank.txt").write_bytes(b" \n\t\r\n" * 20_000)
    (data / "big.txt").write_bytes(b"a" * (settings["max_corpus_bytes"] + 1))
    (data / "dir.txt").mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_text("secret\n", encoding="utf-8")
    (data / "link.txt").symlink_to(outside)


INVALID: list[tuple[str, str, JSONValue | object, int, str, str]] = [
    # (job type, field, value (DROP removes it), status, code, details.field)
    ("train", "model_family", "gpt9", 400, "UNKNOWN_MODEL_FAMILY", "model_family"),
    ("train", "model_family", DROP, 422, "INVALID_CONFIG", "model_family"),
    ("train", "model_family", 3, 422, "INVALID_CONFIG", "model_family"),
    ("train", "model_size", "huge", 400, "INVALID_MODEL_SIZE", "model_size"),
    ("train", "max_seq_len", 0, 422, "INVALID_CONFIG", "max_seq_len"),
    ("train", "num_epochs", 0, 422, "INVALID_CONFIG", "num_epochs"),
    ("train", "batch_size", 0, 422, "INVALID_CONFIG", "batch_size"),
    ("train", "batch_size", "32", 422, "INVALID_CONFIG", "batch_size"),
    ("train", "batch_size", 32.5, 422, "INVALID_CONFIG", "batch_size"),
    ("train", "batch_size", True, 422, "INVALID_CONFIG", "batch_size"),
    ("train", "batch_size", None, 422, "INVALID_CONFIG", "batch_size"),
    ("train", "learning_rate", 0.0, 422, "INVALID_CONFIG", "learning_rate"),
    ("train", "learning_rate", -1e-3, 422, "INVALID_CONFIG", "learning_rate"),
    ("train", "learning_rate", "fast", 422, "INVALID_CONFIG", "learning_rate"),
    ("train", "seed", "0", 422, "INVALID_CONFIG", "seed"),
    ("train", "device", "tpu", 422, "INVALID_CONFIG", "device"),
    ("train", "precision", "fp16", 422, "INVALID_CONFIG", "precision"),
    ("train", "max_steps", 0, 422, "INVALID_CONFIG", "max_steps"),
    ("train", "val_fraction", 1.0, 422, "INVALID_CONFIG", "val_fraction"),
    ("train", "val_fraction", -0.1, 422, "INVALID_CONFIG", "val_fraction"),
    ("train", "grad_clip", 0.0, 422, "INVALID_CONFIG", "grad_clip"),
    ("train", "grad_accum_steps", 0, 422, "INVALID_CONFIG", "grad_accum_steps"),
    ("train", "weight_decay", -0.5, 422, "INVALID_CONFIG", "weight_decay"),
    ("train", "lr_schedule", "linear", 422, "INVALID_CONFIG", "lr_schedule"),
    ("train", "warmup_steps", -1, 422, "INVALID_CONFIG", "warmup_steps"),
    ("train", "min_lr_ratio", 1.5, 422, "INVALID_CONFIG", "min_lr_ratio"),
    ("train", "log_every_steps", 0, 422, "INVALID_CONFIG", "log_every_steps"),
    ("train", "eval_every_steps", 0, 422, "INVALID_CONFIG", "eval_every_steps"),
    ("train", "eval_max_batches", 0, 422, "INVALID_CONFIG", "eval_max_batches"),
    ("train", "checkpoint_every_steps", 0, 422, "INVALID_CONFIG", "checkpoint_every_steps"),
    ("train", "keep_checkpoints", 0, 422, "INVALID_CONFIG", "keep_checkpoints"),
    ("train", "num_processes", 0, 422, "INVALID_CONFIG", "num_processes"),
    ("train", "num_processes", 65, 422, "INVALID_CONFIG", "num_processes"),
    ("train", "num_processes", 9, 422, "INVALID_CONFIG", "num_processes"),  # MAX_TRAIN_PROCESSES
    ("train", "num_processes", 3, 422, "INVALID_CONFIG", "batch_size"),  # 32 rows in 3 shares
    ("train", "num_processes", "2", 422, "INVALID_CONFIG", "num_processes"),
    ("train", "run_id", "../escape", 422, "INVALID_CONFIG", "run_id"),
    ("train", "run_id", "", 422, "INVALID_CONFIG", "run_id"),
    ("train", "run_id", "r1", 422, "INVALID_CONFIG", "run_id"),
    ("train", "epochs", 3, 422, "INVALID_CONFIG", "epochs"),
    ("train", "corpus_path", DROP, 422, "INVALID_CONFIG", "corpus_id"),
    ("train", "corpus_id", "ab" * 32, 422, "INVALID_CONFIG", "corpus_path"),
    ("train", "corpus_path", "missing.txt", 404, "CORPUS_NOT_FOUND", "corpus_path"),
    ("train", "corpus_path", "dir.txt", 404, "CORPUS_NOT_FOUND", "corpus_path"),
    ("train", "corpus_path", "empty.txt", 400, "CORPUS_EMPTY", "corpus_path"),
    ("train", "corpus_path", "blank.txt", 400, "CORPUS_EMPTY", "corpus_path"),
    ("train", "corpus_path", "big.txt", 413, "CORPUS_TOO_LARGE", "corpus_path"),
    ("train", "corpus_path", "../outside.txt", 400, "PATH_OUTSIDE_ROOT", "corpus_path"),
    ("train", "corpus_path", "/etc/hostname", 400, "PATH_OUTSIDE_ROOT", "corpus_path"),
    ("train", "corpus_path", "link.txt", 400, "PATH_OUTSIDE_ROOT", "corpus_path"),
    ("train", "corpus_path", ["corpus.txt"], 422, "INVALID_CONFIG", "corpus_path"),
    ("eval", "run_id", "nope", 404, "MODEL_NOT_FOUND", "run_id"),
    ("eval", "run_id", "../r1", 422, "INVALID_CONFIG", "run_id"),
    ("eval", "run_id", DROP, 422, "INVALID_CONFIG", "run_id"),
    ("eval", "split", "train", 422, "INVALID_CONFIG", "split"),
    ("eval", "val_fraction", 0.0, 422, "INVALID_CONFIG", "val_fraction"),
    ("eval", "max_seq_len", 0, 422, "INVALID_CONFIG", "max_seq_len"),
    ("eval", "batch_size", 0, 422, "INVALID_CONFIG", "batch_size"),
    ("eval", "max_batches", 0, 422, "INVALID_CONFIG", "max_batches"),
    ("eval", "corpus_path", "missing.txt", 404, "CORPUS_NOT_FOUND", "corpus_path"),
    ("eval", "corpus_path", "empty.txt", 400, "CORPUS_EMPTY", "corpus_path"),
    ("eval", "corpus_path", "../outside.txt", 400, "PATH_OUTSIDE_ROOT", "corpus_path"),
    ("eval", "corpus_id", "not-a-digest", 422, "INVALID_CONFIG", "corpus_id"),
    ("eval", "corpus_id", "0" * 64, 404, "CORPUS_NOT_FOUND", "corpus_id"),
    ("eval", "text", "x", 422, "INVALID_CONFIG", "text"),
    ("score", "run_id", "nope", 404, "MODEL_NOT_FOUND", "run_id"),
    ("score", "text", DROP, 422, "INVALID_CONFIG", "text"),
    ("score", "path", "corpus.txt", 422, "INVALID_CONFIG", "path"),
    ("score", "detail_level", "full", 422, "INVALID_CONFIG", "detail_level"),
    ("score", "top_k", 0, 422, "INVALID_CONFIG", "top_k"),
    ("score", "seed", 1.5, 422, "INVALID_CONFIG", "seed"),
    ("score", "prompt_text", "x", 422, "INVALID_CONFIG", "prompt_text"),
    ("generate", "run_id", "nope", 404, "MODEL_NOT_FOUND", "run_id"),
    ("generate", "prompt_text", DROP, 422, "INVALID_CONFIG", "prompt_text"),
    ("generate", "prompt_path", "corpus.txt", 422, "INVALID_CONFIG", "prompt_path"),
    ("generate", "max_new_tokens", 0, 422, "INVALID_CONFIG", "max_new_tokens"),
    ("generate", "temperature", 0.0, 422, "INVALID_CONFIG", "temperature"),
    ("generate", "top_k", -1, 422, "INVALID_CONFIG", "top_k"),
    ("generate", "top_p", 0.0, 422, "INVALID_CONFIG", "top_p"),
    ("generate", "top_p", 1.5, 422, "INVALID_CONFIG", "top_p"),
    ("generate", "num_return_sequences", 0, 422, "INVALID_CONFIG", "num_return_sequences"),
    ("generate", "stop_on_eos", "yes", 422, "INVALID_CONFIG", "stop_on_eos"),
    ("generate", "text", "x", 422, "INVALID_CONFIG", "text"),
    ("train", "tokenizer_id", "nope", 404, "TOKENIZER_NOT_FOUND", "tokenizer_id"),
    ("train", "tokenizer_id", "../char-stored", 422, "INVALID_CONFIG", "tokenizer_id"),
    ("train", "tokenizer_id", 3, 422, "INVALID_CONFIG", "tokenizer_id"),
    ("tokenizer", "kind", "wordpiece", 422, "INVALID_CONFIG", "kind"),
    ("tokenizer", "vocab_size", 258, 422, "INVALID_CONFIG", "vocab_size"),
    ("tokenizer", "vocab_size", 1_000_001, 422, "INVALID_CONFIG", "vocab_size"),
    ("tokenizer", "vocab_size", "300", 422, "INVALID_CONFIG", "vocab_size"),
    ("tokenizer", "vocab_size", 300.0, 422, "INVALID_CONFIG", "vocab_size"),
    ("tokenizer", "tokenizer_id", "../escape", 422, "INVALID_CONFIG", "tokenizer_id"),
    ("tokenizer", "tokenizer_id", "", 422, "INVALID_CONFIG", "tokenizer_id"),
    ("tokenizer", "tokenizer_id", "char-stored", 422, "INVALID_CONFIG", "tokenizer_id"),
    ("tokenizer", "corpus_path", DROP, 422, "INVALID_CONFIG", "corpus_id"),
    ("tokenizer", "corpus_path", "missing.txt", 404, "CORPUS_NOT_FOUND", "corpus_path"),
    ("tokenizer", "corpus_path", "empty.txt", 400, "CORPUS_EMPTY", "corpus_path"),
    ("tokenizer", "corpus_path", "big.txt", 413, "CORPUS_TOO_LARGE", "corpus_path"),
    ("tokenizer", "corpus_path", "../outside.txt", 400, "PATH_OUTSIDE_ROOT", "corpus_path"),
    ("tokenizer", "corpus_id", "0" * 64, 422, "INVALID_CONFIG", "corpus_path"),
    ("tokenizer", "run_id", "r1", 422, "INVALID_CONFIG", "run_id"),
]


def _case_id(case: tuple[str, str, JSONValue | object, int, str, str]) -> str:
    job_type, field, value = case[0], case[1], case[2]
    return f"{job_type}-{field}-{'missing' if value is DROP else repr(value)}"


@pytest.mark.usefixtures("corpora", "trained_run", "stored_tokenizer")
@pytest.mark.parametrize("case", INVALID, ids=[_case_id(case) for case in INVALID])
def test_invalid_request_is_refused_and_leaves_no_trace(
    client: TestClient,
    assert_no_trace: Callable[[], None],
    case: tuple[str, str, JSONValue | object, int, str, str],
) -> None:
    job_type, field, value, status, code, error_field = case
    body = {name: item for name, item in BASE[job_type].items() if name != field}
    if isinstance(value, str | int | float | bool | list | dict) or value is None:
        body[field] = value
    response = client.post(f"/v1/jobs/{job_type}", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == code
    assert error["details"]["field"] == error_field
    assert error["message"]
    assert_no_trace()


@pytest.mark.parametrize("job_type", JOB_TYPES)
@pytest.mark.parametrize(
    "body",
    [
        (b'{"model_family": "char_lstm",', "application/json"),
        (b"[]", "application/json"),
        (b'"text"', "application/json"),
        (b'{"run_id": "\xff"}', "application/json"),
        (b'{"run_id": "r1"}', "text/plain"),
        (b"", "application/json"),
    ],
    ids=["truncated", "array", "string", "not-utf8", "not-json-type", "empty"],
)
@pytest.mark.usefixtures("trained_run", "corpus_path")
def test_a_body_that_is_not_a_json_object_is_invalid_config(
    client: TestClient,
    assert_no_trace: Callable[[], None],
    job_type: str,
    body: tuple[bytes, str],
) -> None:
    raw, content_type = body
    response = client.post(
        f"/v1/jobs/{job_type}", content=raw, headers={"content-type": content_type}
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["details"]) == ("INVALID_CONFIG", {"field": "$"})
    assert_no_trace()


@pytest.mark.usefixtures("corpus_path")
def test_non_finite_numbers_are_refused(
    client: TestClient, queue_lengths: Callable[[], dict[str, int]]
) -> None:
    raw = b'{"model_family": "char_lstm", "model_size": "tiny", "corpus_path": "corpus.txt", '
    response = client.post(
        "/v1/jobs/train",
        content=raw + b'"learning_rate": NaN}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"] == {"field": "learning_rate"}
    assert queue_lengths() == {"train": 0, "infer": 0}


@pytest.mark.parametrize("job_type", ["eval", "score", "generate"])
def test_a_run_still_training_has_no_manifest_and_is_not_found(
    client: TestClient, settings: Settings, record_count: Callable[[], int], job_type: str
) -> None:
    run_dir(settings, "r1").mkdir(parents=True)
    response = client.post(f"/v1/jobs/{job_type}", json=BASE[job_type])
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "MODEL_NOT_FOUND"
    assert record_count() == 0


@pytest.mark.parametrize(
    "manifest",
    [b"{not json", b'{"run_id": "r1"}', b'{"config": {"corpus_path": 3}}'],
    ids=["unparsable", "no-config", "bad-corpus-path"],
)
def test_eval_with_a_damaged_manifest_fails_to_load_the_model(
    client: TestClient,
    settings: Settings,
    record_count: Callable[[], int],
    own: Callable[[Owned, str], None],
    manifest: bytes,
) -> None:
    own("run", "r1")
    directory = run_dir(settings, "r1")
    directory.mkdir(parents=True)
    (directory / "manifest.json").write_bytes(manifest)
    response = client.post("/v1/jobs/eval", json=EVAL)
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "MODEL_LOAD_FAILED"
    assert record_count() == 0


def test_eval_refuses_a_training_corpus_that_is_gone(
    client: TestClient, corpus_path: Path, trained_run: RunManifest
) -> None:
    corpus_path.unlink()
    response = client.post("/v1/jobs/eval", json=EVAL)
    assert response.status_code == 404
    error = response.json()["error"]
    assert (error["code"], error["details"]["field"]) == ("CORPUS_NOT_FOUND", "corpus_path")


def test_eval_refuses_a_manifest_corpus_outside_the_roots(
    client: TestClient,
    settings: Settings,
    tmp_path: Path,
    save_run: Callable[[str, str], RunManifest],
) -> None:
    manifest = save_run("r1", "2026-01-01T00:00:00+00:00")
    manifest["config"]["corpus_path"] = str(tmp_path / "elsewhere.txt")
    write_manifest(run_dir(settings, "r1"), manifest)
    response = client.post("/v1/jobs/eval", json=EVAL)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "PATH_OUTSIDE_ROOT"


@pytest.mark.parametrize("target", [("score", "path"), ("generate", "prompt_path")])
@pytest.mark.usefixtures("corpora", "trained_run")
@pytest.mark.parametrize(
    "expected",
    [("missing.txt", 404, "CORPUS_NOT_FOUND"), ("../outside.txt", 400, "PATH_OUTSIDE_ROOT")],
)
def test_text_files_must_exist_under_the_data_root(
    client: TestClient,
    assert_no_trace: Callable[[], None],
    target: tuple[str, str],
    expected: tuple[str, int, str],
) -> None:
    (job_type, field), (value, status, code) = target, expected
    response = client.post(f"/v1/jobs/{job_type}", json={"run_id": "r1", field: value})
    assert response.status_code == status
    error = response.json()["error"]
    assert (error["code"], error["details"]["field"]) == (code, field)
    assert_no_trace()


def test_records_of_accepted_jobs_are_complete(
    client: TestClient, redis: fakeredis.FakeRedis, trained_run: RunManifest
) -> None:
    body = accepted(client, "generate", GENERATE)
    record = JobStore(redis).get(str(body["job_id"]))
    expected: JobRecord = {
        "job_id": str(body["job_id"]),
        "user_id": 1,
        "type": "generate",
        "queue": "infer",
        "status": "queued",
        "progress": 0.0,
        "message": "queued",
        "attempts": 0,
        "created_at": record["created_at"] if record else "",
        "started_at": None,
        "finished_at": None,
        "heartbeat_at": None,
        "run_id": "r1",
        "result": None,
        "error": None,
        "priority": "normal",
        "origin": None,
    }
    assert record == expected


@pytest.mark.usefixtures("corpora")
def test_windows_longer_than_the_presets_context_are_refused_at_submit(
    client: TestClient, assert_no_trace: Callable[[], None]
) -> None:
    body = {**TRAIN, "model_family": "gpt2", "model_size": "tiny", "max_seq_len": 129}
    response = client.post("/v1/jobs/train", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "INVALID_CONFIG"
    assert error["details"] == {"field": "max_seq_len"}
    assert "<= 128" in error["message"]
    assert_no_trace()
    fits = client.post("/v1/jobs/train", json={**body, "max_seq_len": 128})
    assert fits.status_code == 202, fits.text


@pytest.mark.usefixtures("corpora", "trained_run", "stored_tokenizer")
@pytest.mark.parametrize("job_type", JOB_TYPES)
def test_a_request_may_lower_its_time_limit_but_never_raise_it(
    client: TestClient,
    redis: fakeredis.FakeRedis,
    assert_no_trace: Callable[[], None],
    job_type: JobType,
) -> None:
    limit = DEFAULT_JOB_TIMEOUT_S[job_type]
    for refused in (0, limit + 1):
        response = client.post(
            f"/v1/jobs/{job_type}", json={**BASE[job_type], "timeout_s": refused}
        )
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert (error["code"], error["details"]) == ("INVALID_CONFIG", {"field": "timeout_s"})
    assert f"[1, {limit}]" in error["message"]
    assert_no_trace()
    shorter = client.post(f"/v1/jobs/{job_type}", json={**BASE[job_type], "timeout_s": 7})
    assert shorter.status_code == 202, shorter.text
    assert fetch_job(redis, shorter.json()["job_id"]).timeout == 7
    default = client.post(f"/v1/jobs/{job_type}", json=BASE[job_type])
    assert fetch_job(redis, default.json()["job_id"]).timeout == limit


NUL_PATHS: list[tuple[str, dict[str, JSONValue]]] = [
    ("train", {"corpus_path": "corpus\x00.txt"}),
    ("tokenizer", {"corpus_path": "\x00"}),
    ("generate", {"prompt_text": None, "prompt_path": "prompt.txt\x00/../etc/passwd"}),
    ("score", {"text": None, "path": "x\x00"}),
    (
        "train",
        {
            "model_family": "gpt2",
            "init_from": "ckpt\x00",
            "tokenizer_id": "char-stored",
        },
    ),
]


@pytest.mark.usefixtures("corpora", "trained_run", "stored_tokenizer")
@pytest.mark.parametrize(("job_type", "fields"), NUL_PATHS)
def test_a_nul_byte_in_a_path_is_a_coded_400_with_nothing_queued(
    client: TestClient,
    assert_no_trace: Callable[[], None],
    job_type: str,
    fields: dict[str, JSONValue],
) -> None:
    body = {key: value for key, value in {**BASE[job_type], **fields}.items() if value is not None}
    response = client.post(f"/v1/jobs/{job_type}", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "INVALID_PATH"
    assert "NUL byte" in error["message"]
    assert_no_trace()


@pytest.mark.usefixtures("corpora", "trained_run")
def test_an_error_quotes_only_a_short_prefix_of_a_huge_refused_value(
    client: TestClient, assert_no_trace: Callable[[], None]
) -> None:
    huge = "r" * 1_000_000 + "/"
    response = client.post("/v1/jobs/generate", json={**GENERATE, "run_id": huge})
    assert response.status_code == 422, response.text
    assert len(response.text) < 1_000
    assert (
        response.json()["error"]["message"] == "run_id: String should have at most 128 characters"
    )
    unknown = client.get(f"/v1/jobs/{huge[:5000]}")
    assert unknown.status_code == 404, unknown.text
    assert len(unknown.text) < 1_000
    assert_no_trace()
