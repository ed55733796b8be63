"""Seed 003's target: a 50-trial hyperparameter study of char_lstm/tiny on tinyshakespeare, with
two train workers on this machine, in under 30 minutes.

Starts a private Redis, the API and two `model-trainer worker --queues train` processes (one
torch thread each), trains the default recipe once with the same time budget as every trial
(the baseline, measured in the same run), then runs the study over HTTP (TPE, median pruner,
two trials at a time) and prints its wall time, trials pruned and failed, and the best val loss
against the default recipe's.

Usage: `python -m bench.study_search [--trials 50] [--budget 20]`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TypedDict

import httpx
from bench.reference import corpus_path, machine_load, print_summary
from bench.service_latency import (
    CLI,
    bench_key,
    print_log_tails,
    running,
    service_env,
    start_api,
    start_redis,
    submit,
)

from platform_core.json_types import JSONObject, JSONValue, load_json_object, require_str

TARGET_S = 30 * 60.0
WORKERS = 2
POLL_S = 1.0


class Options(TypedDict):
    trials: int
    budget_s: float


def parse_options() -> Options:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=50, help="trials in the study")
    parser.add_argument("--budget", type=float, default=20.0, help="training seconds per trial")
    args = parser.parse_args()
    return {"trials": int(args.trials), "budget_s": float(args.budget)}


def base_request(corpus_id: str, budget_s: float) -> dict[str, JSONValue]:
    """The default recipe for char_lstm/tiny, held to `budget_s` seconds of training."""
    return {
        "model_family": "char_lstm",
        "model_size": "tiny",
        "corpus_id": corpus_id,
        "device": "cpu",
        "max_steps": 1_000_000,
        "time_budget_s": budget_s,
        "val_fraction": 0.1,
        "eval_every_steps": 50,
        "eval_max_batches": 8,
    }


SEARCH_SPACE: list[JSONValue] = [
    {"name": "learning_rate", "type": "float", "low": 3e-4, "high": 3e-2, "log": True},
    {"name": "batch_size", "type": "categorical", "choices": [16, 32, 64]},
    {"name": "max_seq_len", "type": "categorical", "choices": [64, 128, 256]},
    {"name": "weight_decay", "type": "float", "low": 0.0, "high": 0.1},
    {"name": "warmup_steps", "type": "int", "low": 0, "high": 200, "step": 50},
    {"name": "lr_schedule", "type": "categorical", "choices": ["cosine", "constant"]},
]


def upload(http: httpx.Client, path: Path) -> str:
    headers = {"content-type": "text/plain; charset=utf-8"}
    response = http.post("/v1/corpora", content=path.read_bytes(), headers=headers)
    response.raise_for_status()
    return require_str(load_json_object(response.content), "corpus_id")


def until(http: httpx.Client, path: str, done: str, timeout_s: float) -> JSONObject:
    """Poll a resource until its `status` leaves `done`'s opposite (running/queued)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = load_json_object(http.get(path).content)
        if body["status"] == done or body["status"] in ("failed", "cancelled"):
            return body
        time.sleep(POLL_S)
    raise TimeoutError(f"{path} did not end within {timeout_s} s")


def default_val_loss(http: httpx.Client, base: dict[str, JSONValue]) -> float:
    job_id = submit(http, "train", base)
    record = until(http, f"/v1/jobs/{job_id}", "completed", 600)
    result = record["result"]
    if record["status"] != "completed" or not isinstance(result, dict):
        raise RuntimeError(f"the default recipe did not train: {record}")
    value = result["best_val_loss"]
    if not isinstance(value, float):
        raise RuntimeError(f"the default recipe has no val loss: {result}")
    return value


def run_study(
    http: httpx.Client, base: dict[str, JSONValue], trials: int
) -> tuple[JSONObject, float]:
    body: dict[str, JSONValue] = {
        "base": base,
        "search_space": SEARCH_SPACE,
        "n_trials": trials,
        "parallelism": WORKERS,
        "sampler": "tpe",
        "pruner": "median",
        "pruner_startup_trials": 5,
        "pruner_warmup_steps": 100,
    }
    started = time.monotonic()
    response = http.post("/v1/studies", json=body)
    if response.status_code != 201:
        raise RuntimeError(f"study refused: {response.status_code} {response.text}")
    study_id = require_str(load_json_object(response.content), "study_id")
    study = until(http, f"/v1/studies/{study_id}", "completed", 2 * TARGET_S)
    return study, time.monotonic() - started


def main() -> None:
    opts = parse_options()
    print(f"study_search: {opts['trials']} trials, {opts['budget_s']} s each, {machine_load()}")
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        logs = workdir / "logs"
        logs.mkdir()
        try:
            _, redis_url = start_redis(stack, workdir, logs)
            env = {**service_env(workdir, redis_url), "OMP_NUM_THREADS": "1"}
            key = bench_key(redis_url)
            _, http = start_api(stack, env, logs, key)
            for index in range(WORKERS):
                command = [*CLI, "worker", "--queues", "train"]
                stack.enter_context(running(command, env, logs / f"worker-{index}.log"))
            base = base_request(upload(http, corpus_path()), opts["budget_s"])
            baseline = default_val_loss(http, base)
            study, wall_s = run_study(http, base, opts["trials"])
        except Exception:
            print_log_tails(logs)
            raise
    report(study, wall_s, baseline)


def report(study: JSONObject, wall_s: float, baseline: float) -> None:
    counts = study["counts"]
    best = study["best_trial"]
    assert isinstance(counts, dict) and isinstance(best, dict)
    best_value = best["value"]
    assert isinstance(best_value, float)
    print(f"status {study['status']} ({study['ended_by']}); trials by state: {counts}")
    print(f"best trial {best['number']}: val {best_value:.4f} with {best['params']}")
    print(f"default recipe: val {baseline:.4f}; {machine_load()}")
    name = "study_search"
    print_summary(
        name,
        f"{study['n_trials']}-trial wall time",
        f"{wall_s / 60:.1f} min",
        "< 30 min",
        wall_s < TARGET_S,
    )
    print_summary(name, "trials pruned", str(counts["pruned"]), "-", None)
    print_summary(name, "trials failed", str(counts["failed"]), "0", counts["failed"] == 0)
    ratio = best_value / baseline
    print_summary(name, "best / default val loss", f"{ratio:.3f}", "< 1.00", ratio < 1.0)


if __name__ == "__main__":
    main()
