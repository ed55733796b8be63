"""The hostile-request table: each request a careless or hostile client might send, and the coded
refusal it must get at submit, with nothing recorded or enqueued and no value echoed back whole.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from model_trainer.api.body_limit import BodyLimit
from model_trainer.settings import Settings
from model_trainer.storage.owners import Owned
from model_trainer.storage.runs import RunManifest, run_dir, write_manifest
from model_trainer.tokenizers.char import CharTokenizer
from model_trainer.tokenizers.store import save_tokenizer
from platform_core.json_types import (
    JSONObject,
    JSONValue,
    load_json_object,
    require_object,
    require_str,
)

BASE: dict[str, JSONObject] = {
    "train": {"model_family": "char_lstm", "model_size": "tiny", "corpus_path": "corpus.txt"},
    "eval": {"run_id": "r1"},
    "score": {"run_id": "r1", "text": "To be"},
    "generate": {"run_id": "r1", "prompt_text": "To"},
    "tokenizer": {"corpus_path": "corpus.txt", "vocab_size": 300},
    "export": {"run_id": "r1"},
}
# Over MAX_TEXT_BYTES (1 MiB in the test settings) in UTF-8, under it in characters.
WIDE_TEXT = "é" * 600_000
BIG_FILE = "big.txt"


class Hostile(NamedTuple):
    method: str
    path: str
    body: JSONValue | bytes | None
    status: int
    code: str


def submit(job_type: str, status: int, code: str, **fields: JSONValue) -> Hostile:
    return Hostile("POST", f"/v1/jobs/{job_type}", {**BASE[job_type], **fields}, status, code)


def without(job_type: str, field: str, status: int, code: str) -> Hostile:
    body = {k: v for k, v in BASE[job_type].items() if k != field}
    return Hostile("POST", f"/v1/jobs/{job_type}", body, status, code)


def raw(path: str, content: bytes, status: int, code: str) -> Hostile:
    return Hostile("POST", path, content, status, code)


def get(path: str, status: int, code: str) -> Hostile:
    return Hostile("GET", path, None, status, code)


def schedule(status: int, code: str, **fields: JSONValue) -> Hostile:
    body = {"job_type": "train", "request": BASE["train"], "interval_s": 300, **fields}
    return Hostile("POST", "/v1/schedules", body, status, code)


LR: JSONObject = {"name": "learning_rate", "type": "float", "low": 1e-4, "high": 1e-2}


def study(status: int, code: str, **fields: JSONValue) -> Hostile:
    base: JSONObject = {**BASE["train"], "val_fraction": 0.1}
    body: JSONObject = {"base": base, "search_space": [LR], "n_trials": 4, **fields}
    return Hostile("POST", "/v1/studies", body, status, code)


BAD = "INVALID_CONFIG"
NUL = "corpus\x00.txt"
CASES: dict[str, Hostile] = {
    # train: numbers a worker could not honour
    "train-seq-len-huge": submit("train", 422, BAD, max_seq_len=10_000_000),
    "train-seq-len-zero": submit("train", 422, BAD, max_seq_len=0),
    "train-seq-len-over-context": submit(
        "train", 422, BAD, model_family="gpt2", model_size="tiny", max_seq_len=4096
    ),
    "train-lr-1e308": submit("train", 422, BAD, learning_rate=1e308),
    "train-lr-zero": submit("train", 422, BAD, learning_rate=0.0),
    "train-lr-negative": submit("train", 422, BAD, learning_rate=-1.0),
    "train-seed-2**64": submit("train", 422, BAD, seed=2**64),
    "train-seed-negative": submit("train", 422, BAD, seed=-1),
    "train-epochs-1e9": submit("train", 422, BAD, num_epochs=10**9),
    "train-steps-1e12": submit("train", 422, BAD, max_steps=10**12),
    "train-steps-and-epochs": submit("train", 422, BAD, max_steps=100, num_epochs=3),
    "train-token-budget": submit("train", 422, BAD, batch_size=4096, max_seq_len=8192),
    "train-accum-budget": submit("train", 422, BAD, batch_size=1024, grad_accum_steps=1024),
    "train-accum-huge": submit("train", 422, BAD, grad_accum_steps=10**6),
    "train-batch-huge": submit("train", 422, BAD, batch_size=10**9),
    "train-time-budget-huge": submit("train", 422, BAD, time_budget_s=1e12),
    "train-weight-decay-huge": submit("train", 422, BAD, weight_decay=1e9),
    "train-beta2-one": submit("train", 422, BAD, beta2=1.0),
    "train-keep-checkpoints-huge": submit("train", 422, BAD, keep_checkpoints=10**6),
    "train-grad-clip-inf": submit("train", 422, BAD, grad_clip=1e300),
    "train-timeout-huge": submit("train", 422, BAD, timeout_s=10**9),
    "train-timeout-zero": submit("train", 422, BAD, timeout_s=0),
    "train-lr-as-string": submit("train", 422, BAD, learning_rate="0.1"),
    "train-epochs-as-bool": submit("train", 422, BAD, num_epochs=True),
    "train-unknown-field": submit("train", 422, BAD, learning_rat=0.1),
    "train-unknown-family": submit("train", 400, "UNKNOWN_MODEL_FAMILY", model_family="bert"),
    "train-unknown-size": submit("train", 400, "INVALID_MODEL_SIZE", model_size="huge"),
    "train-family-huge": submit("train", 422, BAD, model_family="x" * 100_000),
    # train: paths and ids
    "train-corpus-nul": submit("train", 400, "INVALID_PATH", corpus_path=NUL),
    "train-corpus-dotdot": submit("train", 400, "PATH_OUTSIDE_ROOT", corpus_path="../../x.txt"),
    "train-corpus-proc": submit(
        "train", 400, "PATH_OUTSIDE_ROOT", corpus_path="/proc/self/environ"
    ),
    "train-corpus-long": submit("train", 422, BAD, corpus_path="a/" * 5000),
    "train-corpus-missing": submit("train", 404, "CORPUS_NOT_FOUND", corpus_path="nope.txt"),
    "train-corpus-too-big": submit("train", 413, "CORPUS_TOO_LARGE", corpus_path=BIG_FILE),
    "train-corpus-id-bad": submit("train", 422, BAD, corpus_path=None, corpus_id="zz"),
    "train-corpus-id-unknown": submit(
        "train", 404, "CORPUS_NOT_FOUND", corpus_path=None, corpus_id="ab" * 32
    ),
    "train-no-corpus": without("train", "corpus_path", 422, BAD),
    "train-run-id-dotdot": submit("train", 422, BAD, run_id="../x"),
    "train-run-id-huge": submit("train", 422, BAD, run_id="r" * 1_000_000),
    "train-init-from-nul": submit(
        "train", 400, "INVALID_PATH", model_family="gpt2", init_from=NUL, tokenizer_id="t"
    ),
    "train-init-from-lstm": submit("train", 422, BAD, init_from="ckpt"),
    "train-tokenizer-unknown": submit("train", 404, "TOKENIZER_NOT_FOUND", tokenizer_id="nope"),
    "train-tokenizer-dotdot": submit("train", 422, BAD, tokenizer_id="../x"),
    "train-body-5mb": submit("train", 413, "REQUEST_TOO_LARGE", run_id="r" * 5_000_000),
    "train-body-not-json": raw("/v1/jobs/train", b"{not json", 422, BAD),
    "train-body-nan": raw("/v1/jobs/train", b'{"learning_rate": NaN}', 422, BAD),
    "train-body-list": raw("/v1/jobs/train", b"[1, 2]", 422, BAD),
    "train-body-not-utf8": raw("/v1/jobs/train", b'{"run_id": "\xff"}', 422, BAD),
    # eval
    "eval-token-budget": submit("eval", 422, BAD, batch_size=4096, max_seq_len=8192),
    "eval-max-batches-huge": submit("eval", 422, BAD, max_batches=10**9),
    "eval-val-fraction-one": submit("eval", 422, BAD, val_fraction=1.0),
    "eval-run-unknown": submit("eval", 404, "MODEL_NOT_FOUND", run_id="nope"),
    "eval-run-dotdot": submit("eval", 422, BAD, run_id=".."),
    "eval-corpus-nul": submit("eval", 400, "INVALID_PATH", corpus_path=NUL),
    # score
    "score-text-50mb": submit("score", 413, "REQUEST_TOO_LARGE", text="x" * 50_000_000),
    "score-text-too-many-chars": submit("score", 422, BAD, text="x" * 1_100_000),
    "score-text-too-many-bytes": submit("score", 413, "REQUEST_TOO_LARGE", text=WIDE_TEXT),
    "score-path-too-big": submit("score", 413, "REQUEST_TOO_LARGE", text=None, path=BIG_FILE),
    "score-path-nul": submit("score", 400, "INVALID_PATH", text=None, path=NUL),
    "score-path-dev-zero": submit("score", 400, "PATH_OUTSIDE_ROOT", text=None, path="/dev/zero"),
    "score-text-and-path": submit("score", 422, BAD, path="corpus.txt"),
    "score-neither": without("score", "text", 422, BAD),
    "score-top-k-huge": submit("score", 422, BAD, top_k=10**6),
    "score-seed-2**64": submit("score", 422, BAD, seed=2**64),
    # generate
    "generate-tokens-1e9": submit("generate", 422, BAD, max_new_tokens=10**9),
    "generate-sequences-1e6": submit("generate", 422, BAD, num_return_sequences=10**6),
    "generate-prompt-10mb": submit("generate", 413, "REQUEST_TOO_LARGE", prompt_text="x" * 10**7),
    "generate-prompt-wide": submit("generate", 413, "REQUEST_TOO_LARGE", prompt_text=WIDE_TEXT),
    "generate-prompt-path-nul": submit(
        "generate", 400, "INVALID_PATH", prompt_text=None, prompt_path=NUL
    ),
    "generate-prompt-path-dotdot": submit(
        "generate", 400, "PATH_OUTSIDE_ROOT", prompt_text=None, prompt_path="../../etc/passwd"
    ),
    "generate-temperature-huge": submit("generate", 422, BAD, temperature=1e308),
    "generate-top-p-zero": submit("generate", 422, BAD, top_p=0.0),
    "generate-top-k-negative": submit("generate", 422, BAD, top_k=-1),
    "generate-seed-2**64": submit("generate", 422, BAD, seed=2**64),
    # tokenizer
    "tokenizer-vocab-1e9": submit("tokenizer", 422, BAD, vocab_size=10**9),
    "tokenizer-bpe-vocab-over-cap": submit("tokenizer", 422, BAD, vocab_size=200_000),
    "tokenizer-corpus-nul": submit("tokenizer", 400, "INVALID_PATH", corpus_path=NUL),
    "tokenizer-id-dotdot": submit("tokenizer", 422, BAD, tokenizer_id="../x"),
    "tokenizer-kind-unknown": submit("tokenizer", 422, BAD, kind="wordpiece"),
    # export
    "export-run-unknown": submit("export", 404, "MODEL_NOT_FOUND", run_id="nope"),
    "export-run-dotdot": submit("export", 422, BAD, run_id="../r1"),
    "export-run-huge": submit("export", 422, BAD, run_id="r" * 100_000),
    "export-run-missing": without("export", "run_id", 422, BAD),
    "export-run-as-number": submit("export", 422, BAD, run_id=1),
    "export-timeout-huge": submit("export", 422, BAD, timeout_s=10**9),
    "export-unknown-field": submit("export", 422, BAD, step=3, opset=7),
    "bundle-job-unknown": get("/v1/jobs/" + "0" * 32 + "/bundle", 404, "JOB_NOT_FOUND"),
    "bundle-job-id-huge": get("/v1/jobs/" + "j" * 5000 + "/bundle", 404, "JOB_NOT_FOUND"),
    "bundle-job-id-dotdot": get("/v1/jobs/%2E%2E/bundle", 404, "JOB_NOT_FOUND"),
    "bundle-post": Hostile("POST", "/v1/jobs/x/bundle", None, 405, "METHOD_NOT_ALLOWED"),
    # reads and other routes
    "job-id-huge": get("/v1/jobs/" + "j" * 5000, 404, "JOB_NOT_FOUND"),
    "jobs-limit-huge": get("/v1/jobs?limit=1000000", 422, BAD),
    "jobs-status-bogus": get("/v1/jobs?status=bogus", 422, BAD),
    "run-dotdot": get("/v1/runs/%2E%2E", 422, BAD),
    "run-unknown": get("/v1/runs/nope", 404, "MODEL_NOT_FOUND"),
    "run-id-with-slash": get("/v1/runs/a%2Fb", 404, "ROUTE_NOT_FOUND"),
    "job-id-with-slash": get("/v1/jobs/a%2Fb/events", 404, "ROUTE_NOT_FOUND"),
    "logs-tail-huge": get("/v1/jobs/j1/logs?tail=1000000", 422, BAD),
    "logs-tail-zero": get("/v1/jobs/j1/logs?tail=0", 422, BAD),
    "logs-tail-negative": get("/v1/jobs/j1/logs?tail=-5", 422, BAD),
    "logs-tail-not-a-number": get("/v1/jobs/j1/logs?tail=all", 422, BAD),
    "logs-tail-2**64": get(f"/v1/jobs/j1/logs?tail={2**64}", 422, BAD),
    "logs-unknown-job": get("/v1/jobs/nope/logs", 404, "JOB_NOT_FOUND"),
    "logs-job-id-huge": get("/v1/jobs/" + "j" * 5000 + "/logs", 404, "JOB_NOT_FOUND"),
    "logs-job-id-with-slash": get("/v1/jobs/a%2Fb/logs", 404, "ROUTE_NOT_FOUND"),
    "logs-post": Hostile("POST", "/v1/jobs/j1/logs", None, 405, "METHOD_NOT_ALLOWED"),
    "jobs-put": Hostile("PUT", "/v1/jobs/train", None, 405, "METHOD_NOT_ALLOWED"),
    # run views, checkpoints and continuation
    "runs-sort-unknown": get("/v1/runs?sort=color", 422, BAD),
    "runs-limit-huge": get("/v1/runs?limit=100000", 422, BAD),
    "runs-filter-nan": get("/v1/runs?metric=loss&max=nan", 422, BAD),
    "runs-filter-inf": get("/v1/runs?metric=loss&min=-inf", 422, BAD),
    "runs-compare-none": get("/v1/runs/compare", 422, BAD),
    "runs-compare-huge": get("/v1/runs/compare?ids=" + "r," * 5000, 422, BAD),
    "runs-compare-eleven": get(
        "/v1/runs/compare?ids=" + ",".join(f"r{i}" for i in range(11)), 422, BAD
    ),
    "run-metrics-limit-huge": get("/v1/runs/r1/metrics?limit=100000000", 422, BAD),
    "run-metrics-offset-negative": get("/v1/runs/r1/metrics?offset=-1", 422, BAD),
    "run-metrics-points-one": get("/v1/runs/r1/metrics?points=1", 422, BAD),
    "run-metrics-unknown": get("/v1/runs/nope/metrics", 404, "MODEL_NOT_FOUND"),
    "run-checkpoints-dotdot": get("/v1/runs/%2E%2E/checkpoints", 422, BAD),
    "generate-step-negative": submit("generate", 422, BAD, step=-1),
    "generate-step-huge": submit("generate", 422, BAD, step=2**64),
    "generate-step-missing": submit("generate", 404, "CHECKPOINT_NOT_FOUND", step=5),
    "train-continue-huge": submit("train", 422, BAD, continue_from="r" * 100_000),
    "train-continue-step-huge": submit("train", 422, BAD, continue_from="r1@" + "9" * 40),
    "train-continue-unknown": submit("train", 404, "MODEL_NOT_FOUND", continue_from="nope@1"),
    "train-patience-zero": submit("train", 422, BAD, early_stopping_patience=0),
    "train-patience-no-val": submit("train", 422, BAD, early_stopping_patience=2, val_fraction=0.0),
    "train-min-delta-negative": submit("train", 422, BAD, early_stopping_min_delta=-1.0),
    "train-grad-alert-order": submit(
        "train", 422, BAD, grad_norm_alert_min=10.0, grad_norm_alert_max=1.0
    ),
    "train-spike-ratio-zero": submit("train", 422, BAD, val_loss_spike_ratio=0.0),
    "train-keep-best-zero": submit("train", 422, BAD, keep_best_checkpoints=0),
    "corpus-not-utf8": raw("/v1/corpora", b"\xff\xfe bad", 422, BAD),
    "corpus-blank": raw("/v1/corpora", b"   \n", 400, "CORPUS_EMPTY"),
    "corpus-too-big": raw("/v1/corpora", b"x" * 1_000_001, 413, "CORPUS_TOO_LARGE"),
    # the model registry, and inference by model reference
    "model-name-bad": Hostile("POST", "/v1/models", {"name": "Bad Name"}, 422, BAD),
    "model-name-huge": Hostile("POST", "/v1/models", {"name": "x" * 100_000}, 422, BAD),
    "model-description-huge": Hostile(
        "POST", "/v1/models", {"name": "m", "description": "x" * 100_000}, 422, BAD
    ),
    "model-unknown-field": Hostile("POST", "/v1/models", {"name": "m", "user_id": 2}, 422, BAD),
    "model-unknown": get("/v1/models/nope", 404, "MODEL_NOT_FOUND"),
    "model-name-dotdot": get("/v1/models/%2E%2E", 422, BAD),
    "model-versions-limit-huge": get("/v1/models/nope/versions?limit=100000", 422, BAD),
    "model-version-zero": get("/v1/models/nope/versions/0", 422, BAD),
    "model-version-huge": get("/v1/models/nope/versions/" + "9" * 30, 422, BAD),
    "model-compare-eleven": get(
        "/v1/models/nope/compare?versions=" + ",".join(["1"] * 11), 422, BAD
    ),
    "model-compare-huge-number": get("/v1/models/nope/compare?versions=1," + "9" * 30, 422, BAD),
    "model-register-unknown": Hostile(
        "POST", "/v1/models/nope/versions", {"run_id": "r1"}, 404, "MODEL_NOT_FOUND"
    ),
    "model-register-step-huge": Hostile(
        "POST", "/v1/models/nope/versions", {"run_id": "r1", "step": 10**12}, 422, BAD
    ),
    "model-promote-version-bool": Hostile(
        "PUT", "/v1/models/nope/aliases/production", {"version": True}, 422, BAD
    ),
    "model-promote-alias-bad": Hostile(
        "PUT", "/v1/models/nope/aliases/Prod", {"version": 1}, 422, BAD
    ),
    "model-rollback-unknown": Hostile(
        "POST", "/v1/models/nope/aliases/production/rollback", None, 404, "MODEL_NOT_FOUND"
    ),
    "generate-model-and-run": submit("generate", 422, BAD, model="m/1"),
    "generate-model-unknown": submit(
        "generate", 404, "MODEL_NOT_FOUND", run_id=None, model="nope@production"
    ),
    "eval-model-malformed": submit("eval", 422, BAD, run_id=None, model="nope"),
    "score-model-huge": submit("score", 422, BAD, run_id=None, model="x" * 100_000),
    # schedules
    "schedule-cron-huge": schedule(422, BAD, interval_s=None, cron="*" * 100_000),
    "schedule-cron-seconds": schedule(422, BAD, interval_s=None, cron="* * * * * *"),
    "schedule-interval-negative": schedule(422, BAD, interval_s=-1),
    "schedule-interval-huge": schedule(422, BAD, interval_s=2**64),
    "schedule-interval-bool": schedule(422, BAD, interval_s=True),
    "schedule-name-huge": schedule(422, BAD, name="x" * 100_000),
    "schedule-request-huge-text": schedule(
        413, "REQUEST_TOO_LARGE", job_type="score", request={"run_id": "r1", "text": WIDE_TEXT}
    ),
    "schedule-request-over-64k": schedule(
        413, "REQUEST_TOO_LARGE", job_type="score", request={"run_id": "r1", "text": "x" * 70_000}
    ),
    "schedule-request-hostile-path": schedule(
        400, "PATH_OUTSIDE_ROOT", request={**BASE["train"], "corpus_path": "../../etc/passwd"}
    ),
    "schedule-request-nan": raw(
        "/v1/schedules",
        b'{"job_type": "train", "interval_s": 300, "request": {"learning_rate": NaN}}',
        422,
        BAD,
    ),
    "schedule-id-huge": get("/v1/schedules/" + "a" * 10_000, 422, BAD),
    "schedule-unknown": get("/v1/schedules/" + "0" * 32, 404, "SCHEDULE_NOT_FOUND"),
    # studies
    "study-trials-zero": study(422, BAD, n_trials=0),
    "study-trials-huge": study(422, BAD, n_trials=2**64),
    "study-parallelism-huge": study(422, BAD, parallelism=10**6),
    "study-timeout-negative": study(422, BAD, timeout_s=-5),
    "study-space-empty": study(422, BAD, search_space=[]),
    "study-space-huge": study(422, BAD, search_space=[LR] * 10_000),
    "study-choices-huge": study(
        422,
        BAD,
        search_space=[{"name": "seed", "type": "categorical", "choices": list(range(100_000))}],
    ),
    "study-choice-object": study(
        422, BAD, search_space=[{"name": "seed", "type": "categorical", "choices": [{"a": 1}]}]
    ),
    "study-param-name-huge": study(422, BAD, search_space=[{**LR, "name": "x" * 100_000}]),
    "study-step-negative": study(422, BAD, search_space=[{**LR, "step": -1}]),
    "study-sampler-unknown": study(422, BAD, sampler="cmaes"),
    "study-metric-unknown": study(422, BAD, metric="accuracy"),
    "study-base-hostile-path": study(
        400,
        "PATH_OUTSIDE_ROOT",
        base={**BASE["train"], "val_fraction": 0.1, "corpus_path": "../../etc/passwd"},
    ),
    "study-low-nan": raw(
        "/v1/studies",
        b'{"base": {"model_family": "char_lstm", "model_size": "tiny", "corpus_path":'
        b' "corpus.txt", "val_fraction": 0.1}, "n_trials": 2, "search_space": [{"name":'
        b' "learning_rate", "type": "float", "low": NaN, "high": 1}]}',
        422,
        BAD,
    ),
    "study-id-huge": get("/v1/studies/" + "a" * 10_000, 422, BAD),
    "study-unknown": get("/v1/studies/study-000000000000", 404, "STUDY_NOT_FOUND"),
}


@pytest.fixture
def world(
    settings: Settings,
    corpus_path: Path,
    trained_run: RunManifest,
    own: Callable[[Owned, str], None],
) -> Path:
    """A corpus, a finished run `r1`, a tokenizer `t` and a 2 MB text file, so only the hostile
    part of each request is wrong."""
    save_tokenizer(CharTokenizer.build("To be", "t"), settings)
    own("tokenizer", "t")
    big = corpus_path.parent / BIG_FILE
    big.write_bytes(b"x" * 2_000_000)
    return big


def send(client: TestClient, case: Hostile) -> tuple[int, str]:
    """The status and error code; the body stays short whatever the request echoed."""
    if isinstance(case.body, bytes):
        response = client.request(case.method, case.path, content=case.body)
    elif case.body is None:
        response = client.request(case.method, case.path)
    else:
        response = client.request(case.method, case.path, json=case.body)
    assert len(response.content) < 2_000, response.text[:300]
    error = require_object(load_json_object(response.content), "error")
    return response.status_code, require_str(error, "code")


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_requests_are_refused_at_submit_with_a_coded_error(
    client: TestClient, world: Path, assert_no_trace: Callable[[], None], name: str
) -> None:
    case = CASES[name]
    assert send(client, case) == (case.status, case.code)
    assert_no_trace()


def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(
    client: TestClient, settings: Settings, assert_no_trace: Callable[[], None]
) -> None:
    chunk = b" " * 65_536
    chunks = iter([chunk] * (settings["max_request_bytes"] // len(chunk) + 2))
    response = client.post("/v1/jobs/train", content=chunks)
    assert response.status_code == 413, response.text
    assert require_str(require_object(response.json(), "error"), "code") == "REQUEST_TOO_LARGE"
    assert_no_trace()


def test_a_chunked_body_under_the_limit_reaches_the_app_whole(
    client: TestClient, world: Path
) -> None:
    body = b'{"run_id": "r1", "prompt_text": "To"}'
    chunks = iter([body[:10], body[10:20], body[20:]])
    headers = {"Content-Type": "application/json"}
    response = client.post("/v1/jobs/generate", content=chunks, headers=headers)
    assert response.status_code == 202, response.text


@pytest.mark.parametrize(("init_from", "status"), [(None, 422), ("/ckpt", 202)])
def test_eval_windows_fit_a_runs_preset_context_unless_it_was_fine_tuned(
    client: TestClient,
    save_run: Callable[[str, str], RunManifest],
    settings: Settings,
    init_from: str | None,
    status: int,
) -> None:
    manifest = save_run("g1", "2026-01-01T00:00:00+00:00")
    gpt2: RunManifest = {
        **manifest,
        "model_family": "gpt2",
        "config": {**manifest["config"], "init_from": init_from},
    }
    write_manifest(run_dir(settings, "g1"), gpt2)
    response = client.post("/v1/jobs/eval", json={"run_id": "g1", "max_seq_len": 512})
    assert response.status_code == status, response.text


def test_a_body_in_several_messages_reaches_the_app_as_one() -> None:
    seen: list[Message] = []
    messages: list[Message] = [
        {"type": "http.request", "body": b'{"a"', "more_body": True},
        {"type": "http.request", "body": b": 1}", "more_body": False},
    ]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(await receive())

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        raise AssertionError(f"nothing is sent before the app answers, got {message}")

    scope: Scope = {"type": "http", "path": "/v1/jobs/train", "headers": []}
    asyncio.run(BodyLimit(app, limit=100)(scope, receive, send))
    assert seen == [{"type": "http.request", "body": b'{"a": 1}', "more_body": False}]


def test_the_table_is_at_least_sixty_cases() -> None:
    assert len(CASES) >= 60
