"""How many train submissions per second one API process accepts, beside two same-run references.

A private redis-server, one `model-trainer api` process (as in production; no worker, so the
jobs stay queued) and two reference endpoints written in bench/submit_ceiling.py run as
processes: `naive` (a sync FastAPI route doing one RQ enqueue) and `ceiling` (an async route
doing one pipelined redis.asyncio round trip). `wrk` (Debian's, a compiled load generator)
keeps 16 keep-alive connections busy with the same `POST /v1/jobs/train` against each in turn.

Every request to the API is a real submission: its key is checked, its body validated, its
corpus (an upload of the key's user) confirmed, its run id claimed, the user's quota and the
queue's depth counted, its record written and its RQ job enqueued on the `train` queue. The
API runs with the per-user and depth caps raised above what the load can submit, so the figure
is throughput, not quota. wrk's script (bench/wrk_submit.lua) counts the 202 answers, and stops
submitting a second before wrk stops (only GET /healthz after), so no submission is in flight
when it ends: afterwards the train queue, the user's job index and the user's active set must
each hold exactly as many jobs as there were 202 answers.

Server, Redis and wrk share the machine's cores, so the CPU the API spent per submission is
printed too. Run from the repository root:
`python -m bench.api_throughput [--seconds 10] [--connections 16]`.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import TypedDict

import httpx
import orjson
from bench.reference import machine_load, print_summary
from bench.service_latency import (
    STARTUP_TIMEOUT_S,
    answers_200,
    bench_key,
    free_port,
    print_log_tails,
    running,
    service_env,
    start_api,
    start_redis,
    upload_corpus,
    wait_for,
)
from bench.submit_ceiling import CEILING_LIST, NAIVE_QUEUE, PATH
from rq import Queue
from rq.serializers import JSONSerializer

from model_trainer.api.admission import active_key
from model_trainer.contracts.jobs import DOMAIN, every_rq_queue
from model_trainer.storage.api_keys import CreatedKey
from platform_workers.keys import user_index_key
from platform_workers.redis_conn import redis_from_url

BENCHMARK = "api_throughput"
TARGET_PER_S = 2000.0
WARMUP_S = 2.0
# Seconds wrk keeps running after its script stopped submitting: every submission has answered.
TAIL_S = 1.0
CAP = 10_000_000
LUA = Path(__file__).with_name("wrk_submit.lua")
CORPUS_TEXT = "To be, or not to be, that is the question.\n" * 200
_WRK_LINE = re.compile(
    r"WRK accepted=(\d+) refused=(\d+) seconds=([\d.]+) errors=(\d+) p50_us=(\d+) p99_us=(\d+)"
)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Options(TypedDict):
    seconds: float
    connections: int


class Load(TypedDict):
    """What one wrk run counted: 202 answers, other answers, and the submitting window."""

    accepted: int
    refused: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float


class Target(TypedDict):
    name: str
    url: str
    pid: int


def parse_options() -> Options:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds of load")
    parser.add_argument("--connections", type=int, default=16, help="wrk's connections")
    args = parser.parse_args()
    if not 1 <= args.connections <= 256 or not 2 <= args.seconds <= 300:
        parser.error("--connections must be in 1..256 and --seconds in [2, 300]")
    return {"seconds": float(args.seconds), "connections": int(args.connections)}


def uncapped_env(env: dict[str, str]) -> dict[str, str]:
    """Admission control's caps above anything the load can submit: the bench submits as one
    user on purpose, and measures how fast submissions are accepted, not the quota."""
    return {**env, "MAX_ACTIVE_JOBS_TRAIN": str(CAP), "MAX_QUEUE_DEPTH": str(CAP)}


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def wrk(target: Target, body: bytes, key: CreatedKey, seconds: float, connections: int) -> Load:
    """One wrk run: submit for `seconds`, then only /healthz for TAIL_S."""
    env = {
        **os.environ,
        "WRK_PATH": PATH,
        "WRK_BODY": body.decode(),
        "WRK_AUTH": f"Bearer {key['key']}",
        "WRK_STOP_AFTER_S": str(seconds),
    }
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds + TAIL_S:.0f}s", "--timeout", "10s"]
    before = process_cpu(target["pid"])
    done = subprocess.run(
        [*command, "-s", str(LUA), target["url"]], env=env, capture_output=True, check=True
    )
    cpu = process_cpu(target["pid"]) - before
    found = _WRK_LINE.search(done.stdout.decode())
    if found is None:
        raise RuntimeError(f"wrk printed no counts: {done.stdout.decode()[-2000:]}")
    accepted, refused, window, errors, p50, p99 = found.groups()
    return {
        "accepted": int(accepted),
        "refused": int(refused),
        "errors": int(errors),
        "seconds": float(window),
        "p50_ms": int(p50) / 1000,
        "p99_ms": int(p99) / 1000,
        "cpu_ms": cpu * 1000 / max(int(accepted), 1),
    }


def start_reference(stack: ExitStack, env: dict[str, str], logs: Path, name: str) -> Target:
    """A reference app from bench/submit_ceiling.py under uvicorn, as the API is served."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        f"bench.submit_ceiling:{name}_app",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    process = stack.enter_context(running(command, env, logs / f"{name}.log"))
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=url) as http:
        wait_for(answers_200(http, "/healthz"), timeout=STARTUP_TIMEOUT_S, what=name)
    return {"name": name, "url": url, "pid": process.pid}


def counted(redis_url: str, key: CreatedKey) -> dict[str, int]:
    """Jobs each store holds once the load ended."""
    redis = redis_from_url(redis_url)
    try:
        return {
            "train queue": sum(
                Queue(name, connection=redis, serializer=JSONSerializer).count
                for name in every_rq_queue("train")
            ),
            "job records indexed": int(redis.zcard(user_index_key(DOMAIN, key["user_id"]))),
            "active set": int(redis.zcard(active_key(key["user_id"], "train"))),
            "naive queue": Queue(NAIVE_QUEUE, connection=redis, serializer=JSONSerializer).count,
            "ceiling list": int(redis.llen(CEILING_LIST)),
        }
    finally:
        redis.close()


def train_body(corpus_id: str) -> bytes:
    """A default char-LSTM train on the user's upload: each gets its own run id."""
    return orjson.dumps({"model_family": "char_lstm", "model_size": "tiny", "corpus_id": corpus_id})


def run(stack: ExitStack, workdir: Path, opts: Options) -> None:
    logs = workdir / "logs"
    logs.mkdir()
    _, redis_url = start_redis(stack, workdir, logs)
    env = uncapped_env(service_env(workdir, redis_url))
    key = bench_key(redis_url)
    api_process, http = start_api(stack, env, logs, key)
    corpus = workdir / "corpus.txt"
    corpus.write_text(CORPUS_TEXT)
    body = train_body(upload_corpus(http, corpus))
    api: Target = {"name": "api", "url": str(http.base_url).rstrip("/"), "pid": api_process.pid}
    targets = [
        start_reference(stack, env, logs, "naive"),
        start_reference(stack, env, logs, "ceiling"),
        api,
    ]
    loads: dict[str, Load] = {}
    accepted: dict[str, int] = {}
    for target in targets:
        warm = wrk(target, body, key, WARMUP_S, opts["connections"])
        loads[target["name"]] = wrk(target, body, key, opts["seconds"], opts["connections"])
        accepted[target["name"]] = warm["accepted"] + loads[target["name"]]["accepted"]
        print(f"{target['name']}: done; {machine_load()}", flush=True)
    report(loads, accepted, counted(redis_url, key))


def report(loads: dict[str, Load], accepted: dict[str, int], stores: dict[str, int]) -> None:
    rates = {name: load["accepted"] / load["seconds"] for name, load in loads.items()}
    print(
        f"{'endpoint':<10}{'accepted/s':>12}{'vs naive':>10}{'vs ceiling':>12}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/req':>12}{'refused':>9}{'errors':>8}"
    )
    for name, load in loads.items():
        print(
            f"{name:<10}{rates[name]:>12,.0f}{rates[name] / rates['naive']:>10.2f}"
            f"{rates[name] / rates['ceiling']:>12.2f}{load['p50_ms']:>9.2f}{load['p99_ms']:>9.2f}"
            f"{load['cpu_ms']:>12.3f}{load['refused']:>9}{load['errors']:>8}"
        )
    api = accepted["api"]
    lost = {
        name: count
        for name, count in stores.items()
        if name in ("train queue", "job records indexed", "active set") and count != api
    }
    refs_ok = (
        stores["naive queue"] == accepted["naive"] and stores["ceiling list"] == accepted["ceiling"]
    )
    print(
        f"api 202 answers {api}: "
        + ", ".join(f"{name} {count}" for name, count in stores.items())
        + (" -> nothing lost" if not lost and refs_ok else " -> MISMATCH")
    )
    rate = rates["api"]
    api_load = loads["api"]
    passed = (
        rate >= TARGET_PER_S
        and not lost
        and refs_ok
        and api_load["refused"] == 0
        and api_load["errors"] == 0
    )
    print_summary(
        BENCHMARK,
        "train submissions/s (wrk -c16)",
        f"{rate:,.0f}",
        f">= {TARGET_PER_S:,.0f}",
        passed,
    )
    print_summary(BENCHMARK, "vs naive sync RQ enqueue", f"{rate / rates['naive']:.2f}", "-", None)
    print_summary(
        BENCHMARK, "vs async one-round-trip ceiling", f"{rate / rates['ceiling']:.2f}", "-", None
    )
    print_summary(BENCHMARK, "submit latency p50 ms", f"{api_load['p50_ms']:.2f}", "-", None)


def main() -> None:
    opts = parse_options()
    if shutil.which("wrk") is None:
        sys.exit("api_throughput needs wrk (Debian: apt-get install wrk)")
    print(
        f"api_throughput: wrk -t1 -c{opts['connections']} POST {PATH} for {opts['seconds']:.0f} s "
        f"(after {WARMUP_S:.0f} s warm-up) against naive, ceiling and the API, one process each, "
        f"sharing {os.cpu_count()} cores with redis and wrk; {machine_load()}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        try:
            run(stack, workdir, opts)
        except BaseException:
            print_log_tails(workdir / "logs")
            raise


if __name__ == "__main__":
    main()
