"""How a worker fleet scales: 200 small mixed jobs drained by 1, 2 and 4 worker processes.

A private redis-server and the API run as processes; a small char-LSTM run is trained first
(not timed) so inference has something to serve. Then, for each fleet size N, N worker
processes (`model-trainer worker --queues train,infer`, each a train and an infer RQ worker)
start, every job of the mix is submitted over HTTP at once, and the clock runs from the first
submit until the last job's terminal event arrives on pub/sub. Workers are stopped between
sizes, so each size starts with cold model caches, as a freshly scaled fleet does.

Two drains per size: the mixed one (generate with 60 new tokens, score, eval of 2 batches and
tiny trainings) and an inference-only one (the same without trainings). Jobs/minute = jobs /
drain seconds. On a 2-core machine inference should
scale near-linearly up to 2 workers; past the core count the workers only share the cores.

Run from the repository root: `python -m bench.fleet [--jobs 200] [--sizes 1,2,4]`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TypedDict

from bench.reference import corpus_path, machine_load, print_summary
from bench.service_latency import (
    CLI,
    EventTap,
    Service,
    answers_200,
    bench_key,
    ended,
    print_log_tails,
    running,
    start_api,
    start_redis,
    submit,
    tiny_train_body,
    upload_corpus,
    wait_for,
)
from bench.service_latency import (
    service_env as base_env,
)
from rq import Worker

from platform_core.json_types import JSONValue, load_json_object, require_str
from platform_workers.redis_conn import redis_from_url

BENCHMARK = "fleet"
STARTUP_TIMEOUT_S = 120.0
DRAIN_TIMEOUT_S = 1800.0
TRAIN_TIMEOUT_S = 600.0
# Per 10 jobs: 6 generate, 2 score, 1 eval, 1 tiny train; the inference drain leaves out train.
MIXES = {
    "mixed": {"generate": 6, "score": 2, "eval": 1, "train": 1},
    "inference": {"generate": 6, "score": 2, "eval": 1},
}
# Near-linear: 2 workers drain inference at least this much faster than 1 on 2 cores.
LINEAR_2X_TARGET = 1.6
SCORE_TEXT = "ROMEO:\nWhat light through yonder window breaks? It is the east.\n" * 4


class Options(TypedDict):
    jobs: int
    sizes: list[int]


class Drain(TypedDict):
    """One fleet size's drain of the mix: jobs of each kind, seconds, jobs per minute."""

    workers: int
    jobs: int
    seconds: float
    per_minute: float


def parse_options() -> Options:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=200, help="jobs in each drain (>= 10)")
    parser.add_argument("--sizes", default="1,2,4", help="fleet sizes, comma-separated")
    args = parser.parse_args()
    sizes = [int(part) for part in str(args.sizes).split(",") if part.strip()]
    if int(args.jobs) < 10 or not sizes or min(sizes) < 1:
        parser.error("--jobs must be >= 10 and --sizes positive whole numbers")
    return {"jobs": int(args.jobs), "sizes": sizes}


def fleet_env(workdir: Path, redis_url: str, jobs: int) -> dict[str, str]:
    """The service settings with quotas raised to the drain's size: the bench user submits the
    whole mix at once, where a real user's active-job quota would (rightly) refuse most of it."""
    env = base_env(workdir, redis_url)
    env.update(
        MAX_ACTIVE_JOBS_TRAIN=str(jobs),
        MAX_ACTIVE_JOBS_INFER=str(jobs),
        OMP_NUM_THREADS="1",
    )
    return env


def job_mix(
    weights: dict[str, int], total: int, run_id: str, corpus_id: str
) -> list[tuple[str, dict[str, JSONValue]]]:
    """`total` jobs interleaved by `weights`, so every kind is spread over the drain."""
    bodies: dict[str, dict[str, JSONValue]] = {
        "generate": {"run_id": run_id, "prompt_text": "ROMEO:\n", "max_new_tokens": 60},
        "score": {"run_id": run_id, "text": SCORE_TEXT},
        "eval": {"run_id": run_id, "corpus_id": corpus_id, "max_batches": 2},
        "train": tiny_train_body(corpus_id),
    }
    cycle = [kind for kind, weight in weights.items() for _ in range(weight)]
    return [
        (cycle[index % len(cycle)], bodies[cycle[index % len(cycle)]]) for index in range(total)
    ]


def train_served_run(service: Service, tap: EventTap, corpus_id: str) -> str:
    """The run the inference jobs use: 200 steps of the small char-LSTM (not timed)."""
    body: dict[str, JSONValue] = {
        "model_family": "char_lstm",
        "model_size": "small",
        "corpus_id": corpus_id,
        "max_steps": 200,
        "eval_max_batches": 2,
        "checkpoint_every_steps": None,
        "device": "cpu",
    }
    job_id = submit(service["http"], "train", body)
    ended(tap, job_id, TRAIN_TIMEOUT_S)
    return require_str(
        load_json_object(service["http"].get(f"/v1/jobs/{job_id}").content), "run_id"
    )


def start_workers(stack: ExitStack, service: Service, count: int, tag: str) -> None:
    """`count` worker processes, ready once RQ has every one of their 2 x count workers."""
    for index in range(count):
        log = service["logs"] / f"worker-{tag}-{index}.log"
        stack.enter_context(
            running([*CLI, "worker", "--queues", "train,infer"], service["env"], log)
        )

    def registered() -> bool:
        return Worker.count(connection=service["redis"]) >= 2 * count

    wait_for(registered, timeout=STARTUP_TIMEOUT_S, what=f"{count} worker processes")


def drain(
    service: Service,
    tap: EventTap,
    count: int,
    mix: list[tuple[str, dict[str, JSONValue]]],
    label: str,
) -> Drain:
    """Submit every job at once, then wait for each one's terminal event."""
    with ExitStack() as workers:
        start_workers(workers, service, count, f"{label}-{count}")
        start = time.perf_counter()
        job_ids = [submit(service["http"], kind, body) for kind, body in mix]
        submitted = time.perf_counter() - start
        for job_id in job_ids:
            ended(tap, job_id, DRAIN_TIMEOUT_S)
        seconds = time.perf_counter() - start
    print(
        f"  {label}, {count} worker(s): {len(mix)} jobs in {seconds:6.1f} s "
        f"({len(mix) / seconds * 60:6.1f} jobs/min; submitting took {submitted:.1f} s)",
        flush=True,
    )
    return {
        "workers": count,
        "jobs": len(mix),
        "seconds": seconds,
        "per_minute": len(mix) / seconds * 60,
    }


def start_service(stack: ExitStack, workdir: Path, jobs: int) -> Service:
    logs = workdir / "logs"
    logs.mkdir()
    env = fleet_env(workdir, start_redis(stack, workdir, logs)[1], jobs)
    http = start_api(stack, env, logs, bench_key(env["REDIS_URL"]))[1]
    redis = redis_from_url(env["REDIS_URL"])
    stack.callback(redis.close)
    return {"env": env, "logs": logs, "redis": redis, "http": http}


def report(label: str, drains: list[Drain]) -> None:
    """The drain's table; only the inference drain's 2-worker ratio has a target."""
    base = drains[0]
    print()
    print(f"{label} drain:")
    versus = f"vs {base['workers']}"
    print(f"{'workers':>7} {'jobs':>5} {'seconds':>8} {'jobs/min':>9} {versus:>7}")
    for row in drains:
        ratio = row["per_minute"] / base["per_minute"]
        print(
            f"{row['workers']:>7} {row['jobs']:>5} {row['seconds']:>8.1f} "
            f"{row['per_minute']:>9.1f} {ratio:>6.2f}x"
        )
        targeted = label == "inference" and row["workers"] == 2 and base["workers"] == 1
        passed = ratio >= LINEAR_2X_TARGET if targeted else None
        target = f">= {LINEAR_2X_TARGET}x" if passed is not None else "-"
        print_summary(
            BENCHMARK,
            f"{label}: {row['workers']} workers jobs/min (x vs {base['workers']})",
            f"{row['per_minute']:.1f} ({ratio:.2f}x)",
            target,
            passed,
        )
    print(f"machine: {machine_load()}")


def run(stack: ExitStack, workdir: Path, opts: Options) -> None:
    service = start_service(stack, workdir, opts["jobs"])
    tap = EventTap(service["redis"])
    stack.callback(tap.close)
    corpus_id = upload_corpus(service["http"], corpus_path())
    with ExitStack() as first:
        start_workers(first, service, 1, "setup")
        wait_for(answers_200(service["http"], "/readyz"), timeout=STARTUP_TIMEOUT_S, what="/readyz")
        run_id = train_served_run(service, tap, corpus_id)
    print(
        f"served run {run_id}; draining {opts['jobs']} jobs with {opts['sizes']} workers",
        flush=True,
    )
    for label, weights in MIXES.items():
        mix = job_mix(weights, opts["jobs"], run_id, corpus_id)
        report(label, [drain(service, tap, count, mix, label) for count in opts["sizes"]])


def main() -> None:
    opts = parse_options()
    print(
        f"fleet: redis + API + N worker processes, {os.cpu_count()} cores, {machine_load()}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        try:
            run(stack, workdir, opts)
        except BaseException:
            print_log_tails(workdir / "logs")
            raise


if __name__ == "__main__":
    main()
