"""How many job submissions per second one uvicorn API process accepts.

A private redis-server and one `model-trainer api` process run as in production (no worker: the
jobs stay queued). The load generator in this process keeps a fixed number of keep-alive
connections busy with `POST /v1/jobs/generate` for a finished run: every request is a real
submission (authenticated by an API key, validated, admitted, recorded as a job hash, enqueued
on RQ's `infer` queue). The run is a run directory holding only a manifest.json, claimed for the
key's user, which is all the API checks before accepting. The API runs with its per-user and
queue-depth caps raised above what the load can submit, so the figure is throughput, not quota.
Afterwards the `infer` queue must hold exactly as many jobs as there were 202 answers.

Server, Redis and this generator share the machine's cores, so the CPU each spent per
submission is printed too: the server's CPU milliseconds per request bound what one process
can do however many cores the machine has.
Run from the repository root: `python -m bench.api_throughput [--seconds 10] [--concurrency 32]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TypedDict

import httpx
import orjson
from bench.reference import machine_load, print_summary
from bench.service_latency import (
    bench_key,
    percentile,
    print_log_tails,
    service_env,
    start_api,
    start_redis,
)
from rq import Queue
from rq.serializers import JSONSerializer

from model_trainer.contracts.jobs import DOMAIN
from model_trainer.settings import load_settings
from model_trainer.storage.api_keys import CreatedKey
from model_trainer.storage.owners import claim
from platform_workers.keys import user_index_key
from platform_workers.redis_conn import redis_from_url

BENCHMARK = "api_throughput"
TARGET_PER_S = 500.0
RUN_ID = "bench-throughput-run"
WARMUP_S = 2.0
MAX_REQUESTS = 200_000
REQUEST_TIMEOUT_S = 10.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Options(TypedDict):
    seconds: float
    concurrency: int


class Load(TypedDict):
    """What one timed phase of load produced."""

    accepted: int
    errors: list[str]
    latencies_ms: list[float]
    elapsed_s: float


class CpuSeconds(TypedDict):
    """CPU time (user + system) each participant has used so far."""

    api: float
    redis: float
    generator: float


class Processes(TypedDict):
    """The service processes whose CPU time is read from /proc."""

    api: subprocess.Popen[bytes]
    redis: subprocess.Popen[bytes]


def parse_options() -> Options:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds of load")
    parser.add_argument("--concurrency", type=int, default=32, help="connections kept busy")
    args = parser.parse_args()
    if not 1 <= args.concurrency <= 256 or not 0 < args.seconds <= 300:
        parser.error("--concurrency must be in 1..256 and --seconds in (0, 300]")
    return {"seconds": float(args.seconds), "concurrency": int(args.concurrency)}


def fake_run(env: dict[str, str], key: CreatedKey) -> None:
    """A finished run as the API sees one: `runs/<id>/manifest.json` (no weights needed,
    since no worker ever picks these jobs up), owned by the key's user as if they trained it."""
    settings = load_settings(env)
    directory = settings["artifacts_root"] / "runs" / RUN_ID
    directory.mkdir(parents=True)
    manifest = {"run_id": RUN_ID, "model_family": "char_lstm", "model_size": "tiny"}
    (directory / "manifest.json").write_bytes(orjson.dumps(manifest))
    redis = redis_from_url(settings["redis_url"])
    try:
        if not claim(redis, "run", RUN_ID, key["user_id"]):
            raise RuntimeError(f"run {RUN_ID} is already claimed by another user")
    finally:
        redis.close()


def uncapped_env(env: dict[str, str]) -> dict[str, str]:
    """The API's settings with admission control's caps above anything the load can submit
    (MAX_REQUESTS per phase, warm-up and measured): the bench submits thousands of generate
    jobs as one user on purpose, and measures how fast they are accepted, not the quota."""
    cap = str(4 * MAX_REQUESTS)
    return {**env, "MAX_ACTIVE_JOBS_INFER": cap, "MAX_QUEUE_DEPTH": cap}


def request_body() -> bytes:
    """One valid generate request, serialised once: the generator should cost little."""
    body = {"run_id": RUN_ID, "prompt_text": "ROMEO:\n", "max_new_tokens": 100, "seed": 1}
    return orjson.dumps(body)


# ---------------------------------------------------------------- load


class Connection:
    """One keep-alive HTTP/1.1 connection speaking just enough of the protocol for this load.

    A general client (httpx) spends ~2.7 ms of CPU per request here, twice what the API spends,
    and on a shared 2-core machine the figure would then measure the client; writing a
    pre-built request and reading a Content-Length body costs a few tens of microseconds.
    """

    def __init__(self, host: str, port: int, request: bytes) -> None:
        self._address = (host, port)
        self._request = request
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self) -> tuple[int, bytes]:
        """(status, body) of one request; reconnects when the server closed the connection."""
        if self._streams is None:
            self._streams = await asyncio.open_connection(*self._address)
        reader, writer = self._streams
        writer.write(self._request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        body = await reader.readexactly(content_length(head))
        if b"\r\nconnection: close" in head.lower():
            await self.close()
        return int(head[9:12]), body

    async def close(self) -> None:
        if self._streams is not None:
            writer = self._streams[1]
            self._streams = None
            writer.close()
            await writer.wait_closed()


def content_length(head: bytes) -> int:
    """The Content-Length of a response head (uvicorn always sends one for JSON bodies)."""
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    raise ValueError(f"response without Content-Length: {head[:200]!r}")


def build_request(host: str, port: int, body: bytes, api_key: str) -> bytes:
    """The whole request as bytes, built once and written as it is for every submission."""
    head = (
        f"POST /v1/jobs/generate HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {api_key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def keep_busy(connection: Connection, deadline: float, load: Load, cap: int) -> None:
    """One connection's worth of load: the next request as soon as the last one answered."""
    while time.perf_counter() < deadline and load["accepted"] + len(load["errors"]) < cap:
        start = time.perf_counter()
        try:
            status, body = await connection.post()
        except (OSError, asyncio.IncompleteReadError, ValueError) as error:
            load["errors"].append(repr(error))
            await connection.close()
            continue
        load["latencies_ms"].append((time.perf_counter() - start) * 1000)
        if status == 202 and b'"job_id"' in body:
            load["accepted"] += 1
        else:
            load["errors"].append(f"{status} {body[:200]!r}")
    await connection.close()


async def drive(url: httpx.URL, request: bytes, seconds: float, concurrency: int) -> Load:
    """`concurrency` requests in flight for `seconds` (capped at MAX_REQUESTS); the elapsed
    time runs until the last in-flight request has answered."""
    load: Load = {"accepted": 0, "errors": [], "latencies_ms": [], "elapsed_s": 0.0}
    host, port = url.host, url.port or 80
    connections = [Connection(host, port, request) for _ in range(concurrency)]
    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.wait_for(
        asyncio.gather(*(keep_busy(c, deadline, load, MAX_REQUESTS) for c in connections)),
        timeout=seconds + REQUEST_TIMEOUT_S,
    )
    load["elapsed_s"] = time.perf_counter() - start
    return load


# ---------------------------------------------------------------- accounting


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc (works for our children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_now(processes: Processes) -> CpuSeconds:
    mine = os.times()
    return {
        "api": process_cpu(processes["api"].pid),
        "redis": process_cpu(processes["redis"].pid),
        "generator": mine.user + mine.system,
    }


def report_cpu(before: CpuSeconds, after: CpuSeconds, load: Load) -> None:
    """CPU milliseconds per submission and average cores for each participant: the API process
    near one core means it is the bottleneck; well below means it was starved (or waiting)."""
    count, elapsed = max(load["accepted"], 1), load["elapsed_s"]
    spent = {name: after[name] - before[name] for name in ("api", "redis", "generator")}
    print(
        "CPU per submission (average cores used): "
        + ", ".join(
            f"{name} {seconds * 1000 / count:.2f} ms ({seconds / elapsed:.2f})"
            for name, seconds in spent.items()
        )
        + f"; {machine_load()} at the end"
    )
    api_ms = spent["api"] * 1000 / count
    print(
        f"at {api_ms:.2f} ms of API CPU per submission, one API process on one core accepts "
        f"about {1000 / max(api_ms, 1e-9):,.0f} submissions/s"
    )


def check_nothing_lost(env: dict[str, str], user_id: int, accepted: int) -> bool:
    """Every 202 left one job on RQ's infer queue and one in the user's job index."""
    settings = load_settings(env)
    redis = redis_from_url(settings["redis_url"])
    try:
        queued = Queue("infer", connection=redis, serializer=JSONSerializer).count
        indexed = redis.zcard(user_index_key(DOMAIN, user_id))
    finally:
        redis.close()
    same = queued == accepted == indexed
    print(
        f"202 answers {accepted}, jobs on the infer queue {queued}, job records indexed "
        f"{indexed}: {'nothing lost' if same else 'MISMATCH'}"
    )
    return same


# ---------------------------------------------------------------- main


def report(load: Load, warmup: Load, nothing_lost: bool) -> None:
    """The figure, its verdict (errors or lost jobs fail it too), RESULT and SUMMARY lines."""
    if len(load["latencies_ms"]) < 2:
        raise RuntimeError(f"the API hardly answered; first errors: {load['errors'][:3]}")
    rate = load["accepted"] / load["elapsed_s"]
    p50, p95 = statistics.median(load["latencies_ms"]), percentile(load["latencies_ms"], 95)
    passed = rate >= TARGET_PER_S and not load["errors"] and nothing_lost
    verdict = "PASS" if passed else "FAIL"
    print(f"warm-up: {warmup['accepted']} accepted in {warmup['elapsed_s']:.1f} s")
    print(
        f"measured: {load['accepted']} accepted, {len(load['errors'])} errors in "
        f"{load['elapsed_s']:.2f} s -> {rate:,.1f} submissions/s; request latency "
        f"p50 {p50:.1f} ms p95 {p95:.1f} ms; target >= {TARGET_PER_S:.0f}/s {verdict}"
    )
    for error in sorted(set(load["errors"]))[:5]:
        print(f"  error: {error}")
    print(f"RESULT api_submissions_per_s={rate:.1f} target>={TARGET_PER_S:.0f} {verdict}")
    print(f"RESULT api_submit_latency_p50_ms={p50:.1f}")
    print(f"RESULT api_submit_latency_p95_ms={p95:.1f}")
    print_summary(BENCHMARK, "submissions/s", f"{rate:.1f}", f">= {TARGET_PER_S:.0f}", passed)
    print_summary(BENCHMARK, "submit latency p50 ms", f"{p50:.1f}", "-", None)
    print_summary(BENCHMARK, "submit latency p95 ms", f"{p95:.1f}", "-", None)


def run(stack: ExitStack, workdir: Path, opts: Options) -> None:
    logs = workdir / "logs"
    logs.mkdir()
    redis_process, redis_url = start_redis(stack, workdir, logs)
    env = uncapped_env(service_env(workdir, redis_url))
    key = bench_key(redis_url)
    fake_run(env, key)
    api_process, http = start_api(stack, env, logs, key)
    processes: Processes = {"api": api_process, "redis": redis_process}
    url = http.base_url
    request = build_request(url.host, url.port or 80, request_body(), key["key"])
    warmup = asyncio.run(drive(url, request, WARMUP_S, opts["concurrency"]))
    before = cpu_now(processes)
    load = asyncio.run(drive(url, request, opts["seconds"], opts["concurrency"]))
    after = cpu_now(processes)
    report_cpu(before, after, load)
    submitted = load["accepted"] + warmup["accepted"]
    report(load, warmup, check_nothing_lost(env, key["user_id"], submitted))


def main() -> None:
    opts = parse_options()
    print(
        f"api_throughput: 1 uvicorn API process (`model-trainer api`) + redis-server, "
        f"POST /v1/jobs/generate from {opts['concurrency']} keep-alive connections for "
        f"{opts['seconds']:.0f} s after a {WARMUP_S:.0f} s warm-up; NOTE: this machine has "
        f"{os.cpu_count()} cores, shared by the load generator, the API and redis; "
        f"{machine_load()}",
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
