"""What the S3 artifact store costs a training, against the local disk.

Two services share one redis-server (each on its own database) and one moto S3 server (a real
S3-protocol HTTP server, as the tests use): one with the local store (ARTIFACTS_ROOT alone),
one with `ARTIFACTS_URL=s3://…` (ARTIFACTS_ROOT is then its cache). Each has an API and one
worker process. The same training (small char-LSTM, 100 steps, a checkpoint every 25 steps,
so four checkpoints and the run directory are published) runs alternately on each, so both
sides see the same machine load; the figure is the median submit→completed wall time of each
and their difference per training. moto runs on this machine, so the figure is the protocol,
hashing and copying cost, not a network's latency.

Run from the repository root: `python -m bench.store_overhead [--n 5]`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TypedDict

import boto3
from bench.reference import corpus_path, machine_load, print_summary
from bench.service_latency import (
    CLI,
    EventTap,
    Service,
    bench_key,
    ended,
    free_port,
    print_log_tails,
    running,
    start_api,
    start_redis,
    submit,
    upload_corpus,
    wait_for,
)
from bench.service_latency import (
    service_env as base_env,
)
from rq import Worker

from platform_core.json_types import JSONValue
from platform_workers.redis_conn import redis_from_url

BENCHMARK = "store_overhead"
STARTUP_TIMEOUT_S = 120.0
TRAIN_TIMEOUT_S = 600.0
BUCKET = "bench-artifacts"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class Options(TypedDict):
    n: int


def parse_options() -> Options:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=5, help="trainings on each store (>= 1)")
    args = parser.parse_args()
    if int(args.n) < 1:
        parser.error("--n must be at least 1")
    return {"n": int(args.n)}


def start_moto(stack: ExitStack, logs: Path) -> str:
    """moto's standalone S3 server on a free port, with the benchmark's bucket: its URL."""
    port = free_port()
    program = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    command = [program, "-H", "127.0.0.1", "-p", str(port)]
    stack.enter_context(running(command, dict(os.environ), logs / "moto.log"))

    def answers() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    wait_for(answers, timeout=30, what="moto_server")
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
    )
    client.create_bucket(Bucket=BUCKET)
    return endpoint


def start_side(stack: ExitStack, workdir: Path, redis_url: str, s3_endpoint: str | None) -> Service:
    """An API and one worker on `redis_url`; with `s3_endpoint`, over the S3 store."""
    name = "s3" if s3_endpoint else "local"
    side = workdir / name
    logs = side / "logs"
    logs.mkdir(parents=True)
    env = base_env(side, redis_url)
    if s3_endpoint is not None:
        env.update(CREDENTIALS, ARTIFACTS_URL=f"s3://{BUCKET}/store", AWS_ENDPOINT_URL=s3_endpoint)
    env["OMP_NUM_THREADS"] = "1"
    http = start_api(stack, env, logs, bench_key(redis_url))[1]
    stack.enter_context(running([*CLI, "worker", "--queues", "train"], env, logs / "worker.log"))
    redis = redis_from_url(redis_url)
    stack.callback(redis.close)

    def registered() -> bool:
        return Worker.count(connection=redis) >= 1

    wait_for(registered, timeout=STARTUP_TIMEOUT_S, what=f"the {name} worker")
    return {"env": env, "logs": logs, "redis": redis, "http": http}


def training(corpus_id: str) -> dict[str, JSONValue]:
    return {
        "model_family": "char_lstm",
        "model_size": "small",
        "corpus_id": corpus_id,
        "max_steps": 100,
        "checkpoint_every_steps": 25,
        "keep_checkpoints": 4,
        "eval_max_batches": 2,
        "device": "cpu",
    }


def timed_training(side: Service, tap: EventTap, corpus_id: str) -> float:
    start = time.perf_counter()
    job_id = submit(side["http"], "train", training(corpus_id))
    ended(tap, job_id, TRAIN_TIMEOUT_S)
    return time.perf_counter() - start


def run(stack: ExitStack, workdir: Path, opts: Options) -> None:
    logs = workdir / "logs"
    logs.mkdir()
    redis_url = start_redis(stack, workdir, logs)[1]
    endpoint = start_moto(stack, logs)
    local = start_side(stack, workdir, redis_url, None)
    s3 = start_side(stack, workdir, redis_url.removesuffix("/0") + "/1", endpoint)
    taps = {name: EventTap(side["redis"]) for name, side in (("local", local), ("s3", s3))}
    for tap in taps.values():
        stack.callback(tap.close)
    corpora = {"local": upload_corpus(local["http"], corpus_path())}
    corpora["s3"] = upload_corpus(s3["http"], corpus_path())
    times: dict[str, list[float]] = {"local": [], "s3": []}
    for index in range(opts["n"]):
        for name, side in (("local", local), ("s3", s3)):
            times[name].append(timed_training(side, taps[name], corpora[name]))
        print(
            f"  training {index + 1}/{opts['n']}: local {times['local'][-1]:6.2f} s, "
            f"s3 {times['s3'][-1]:6.2f} s",
            flush=True,
        )
    report(times)


def report(times: dict[str, list[float]]) -> None:
    local, s3 = statistics.median(times["local"]), statistics.median(times["s3"])
    print()
    print(f"submit->completed median: local disk {local:.2f} s, S3 store {s3:.2f} s")
    print(f"S3 overhead per training: {s3 - local:+.2f} s ({s3 / local:.3f}x the local disk)")
    print(f"machine: {machine_load()}")
    print_summary(BENCHMARK, "local disk training s (median)", f"{local:.2f}", "-", None)
    print_summary(BENCHMARK, "S3 store training s (median)", f"{s3:.2f}", "-", None)
    print_summary(BENCHMARK, "S3 overhead s/training", f"{s3 - local:+.2f}", "-", None)


def main() -> None:
    opts = parse_options()
    print(f"store_overhead: local disk vs S3 (moto), {machine_load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        try:
            run(stack, workdir, opts)
        except BaseException:
            for folder in (workdir / "logs", workdir / "local" / "logs", workdir / "s3" / "logs"):
                if folder.is_dir():
                    print_log_tails(folder)
            raise


if __name__ == "__main__":
    main()
