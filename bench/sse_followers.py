"""What a thousand SSE followers cost the API: job reads stay fast, and SIGTERM still stops it.

A private redis-server and one `model-trainer api` process run as in production (no worker:
the jobs stay queued, so their event streams stay open and silent, the followers' worst case).
`--followers` clients, spread over `--jobs` train jobs submitted over HTTP (one API key; the
API's per-user cap on queued training jobs is raised to `--jobs` for this), follow
`GET /v1/jobs/{id}/events` from a second thread of this process (one asyncio loop, one
connection each). Meanwhile the main thread times `GET /v1/jobs/{id}` on a keep-alive
connection, one request every 10 ms, first with no follower attached (the baseline, same API
process) and again with all of them attached, after they settled. Then the API gets SIGTERM
with the followers still attached: the figure is how long it takes to exit, and every follower
must have seen its stream end cleanly (the chunked body terminated, no connection reset).

Everything stays on 127.0.0.1. Run from the repository root:
`python -m bench.sse_followers [--followers 1000] [--jobs 250] [--requests 300]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TypedDict

import httpx
from bench.api_throughput import process_cpu
from bench.reference import machine_load, print_summary
from bench.service_latency import (
    bearer,
    bench_key,
    percentile,
    print_log_tails,
    service_env,
    start_api,
    start_redis,
    submit,
)

from model_trainer.storage.api_keys import CreatedKey
from platform_core.json_types import JSONValue, load_json_object, require_str

BENCHMARK = "sse_followers"
P99_TARGET_MS = 50.0
EXIT_TARGET_S = 5.0
REQUEST_INTERVAL_S = 0.01
SETTLE_S = 3.0
ATTACH_TIMEOUT_S = 60.0
EXIT_TIMEOUT_S = 30.0
FD_HEADROOM = 512
CORPUS = b"To be, or not to be, that is the question.\n" * 200


class Options(TypedDict):
    followers: int
    jobs: int
    requests: int


class Latency(TypedDict):
    p50: float
    p95: float
    p99: float
    max: float


def parse_options() -> Options:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--followers", type=int, default=1000, help="SSE clients attached")
    parser.add_argument("--jobs", type=int, default=250, help="queued jobs they follow")
    parser.add_argument("--requests", type=int, default=300, help="timed job reads per phase")
    args = parser.parse_args()
    if not 1 <= args.jobs <= args.followers <= 10_000 or args.requests < 2:
        parser.error("need 1 <= --jobs <= --followers <= 10000 and --requests >= 2")
    return {"followers": args.followers, "jobs": args.jobs, "requests": args.requests}


def raise_fd_limit(needed: int) -> None:
    """Each follower is a socket here and one in the API (which inherits this limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = needed + FD_HEADROOM
    if soft < wanted:
        ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
        if ceiling < wanted:
            print(f"note: open files limited to {ceiling}; some followers may fail to connect")


class FollowerPool:
    """The followers, on their own event loop in a background thread."""

    def __init__(self, base_url: str, key: CreatedKey, job_ids: list[str], count: int) -> None:
        self.attached = 0
        self.ended_cleanly = 0
        self.errors: list[str] = []
        self._base_url = base_url
        self._headers = bearer(key)
        self._targets = [job_ids[index % len(job_ids)] for index in range(count)]
        self._thread = threading.Thread(target=self._run, name="followers", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.run(self._follow_all())

    async def _follow_all(self) -> None:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
        timeout = httpx.Timeout(ATTACH_TIMEOUT_S, read=None)
        async with httpx.AsyncClient(
            base_url=self._base_url, headers=self._headers, limits=limits, timeout=timeout
        ) as h:
            await asyncio.gather(*(self._follow(h, job_id) for job_id in self._targets))

    async def _follow(self, http: httpx.AsyncClient, job_id: str) -> None:
        try:
            async with http.stream("GET", f"/v1/jobs/{job_id}/events") as response:
                if response.status_code != 200:
                    self.errors.append(f"HTTP {response.status_code}")
                    return
                self.attached += 1
                async for _ in response.aiter_lines():
                    pass
        except httpx.HTTPError as error:
            self.errors.append(repr(error))
            return
        self.ended_cleanly += 1

    def wait_attached(self) -> float:
        """Seconds until every follower got its response headers."""
        started = time.monotonic()
        while self.attached + len(self.errors) < len(self._targets):
            if time.monotonic() - started > ATTACH_TIMEOUT_S:
                raise TimeoutError(f"only {self.attached} of {len(self._targets)} attached")
            time.sleep(0.05)
        if self.errors:
            raise RuntimeError(f"{len(self.errors)} followers failed: {self.errors[:3]}")
        return time.monotonic() - started

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()


def queued_jobs(http: httpx.Client, count: int) -> list[str]:
    """`count` tiny train jobs over HTTP; without a worker they stay queued."""
    headers = {"content-type": "text/plain; charset=utf-8"}
    uploaded = http.post("/v1/corpora", content=CORPUS, headers=headers)
    uploaded.raise_for_status()
    corpus_id = require_str(load_json_object(uploaded.content), "corpus_id")
    body: dict[str, JSONValue] = {
        "model_family": "char_lstm",
        "model_size": "tiny",
        "corpus_id": corpus_id,
        "max_steps": 10,
    }
    return [submit(http, "train", body) for _ in range(count)]


def time_job_reads(http: httpx.Client, job_ids: list[str], count: int) -> list[float]:
    """Milliseconds per `GET /v1/jobs/{id}`, one every REQUEST_INTERVAL_S, cycling over jobs."""
    latencies: list[float] = []
    for index in range(count):
        started = time.perf_counter()
        response = http.get(f"/v1/jobs/{job_ids[index % len(job_ids)]}")
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"job read answered {response.status_code}: {response.text}")
        time.sleep(REQUEST_INTERVAL_S)
    return latencies


def timed_phase(
    api: subprocess.Popen[bytes], http: httpx.Client, job_ids: list[str], count: int
) -> tuple[Latency, float]:
    """The job reads' latency, and the API process's CPU use meanwhile (cores)."""
    cpu_before, clock_before = process_cpu(api.pid), time.monotonic()
    latency = summarize(time_job_reads(http, job_ids, count))
    return latency, (process_cpu(api.pid) - cpu_before) / (time.monotonic() - clock_before)


def summarize(latencies: list[float]) -> Latency:
    return {
        "p50": statistics.median(latencies),
        "p95": percentile(latencies, 95),
        "p99": percentile(latencies, 99),
        "max": max(latencies),
    }


def describe(label: str, latency: Latency, cpu: float, count: int) -> None:
    print(
        f"{label}: GET /v1/jobs/{{id}} p50 {latency['p50']:.2f} ms  p95 {latency['p95']:.2f} ms  "
        f"p99 {latency['p99']:.2f} ms  max {latency['max']:.2f} ms  (n={count}); "
        f"API process CPU {cpu * 100:.0f}% of one core",
        flush=True,
    )


def stop_api(process: subprocess.Popen[bytes]) -> float:
    """SIGTERM with the followers attached; seconds until the process exited."""
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=EXIT_TIMEOUT_S)
    return time.monotonic() - started


def report(base: Latency, loaded: Latency, exit_s: float, pool: FollowerPool, n: int) -> None:
    ratio = loaded["p99"] / base["p99"]
    p99_ok = loaded["p99"] < P99_TARGET_MS
    exit_ok = exit_s < EXIT_TARGET_S and pool.ended_cleanly == n
    print(
        f"with {n} followers: p99 {loaded['p99']:.2f} ms vs {base['p99']:.2f} ms without "
        f"(x{ratio:.2f}); target p99 < {P99_TARGET_MS:.0f} ms {'PASS' if p99_ok else 'FAIL'}"
    )
    print(
        f"SIGTERM -> exit {exit_s:.2f} s; streams ended cleanly {pool.ended_cleanly}/{n}, "
        f"broken {len(pool.errors)}; target < {EXIT_TARGET_S:.0f} s, all clean "
        f"{'PASS' if exit_ok else 'FAIL'}"
    )
    for error in sorted(set(pool.errors))[:3]:
        print(f"  broken stream: {error}")
    print(f"RESULT sse_job_read_p99_ms={loaded['p99']:.2f} target<{P99_TARGET_MS:.0f}")
    print(f"RESULT sse_api_exit_s={exit_s:.2f} target<{EXIT_TARGET_S:.0f}")
    figure = f"job read p99 ms, {n} followers"
    print_summary(BENCHMARK, figure, f"{loaded['p99']:.2f}", f"< {P99_TARGET_MS:.0f}", p99_ok)
    print_summary(BENCHMARK, "job read p99 ms, 0 followers", f"{base['p99']:.2f}", "-", None)
    print_summary(BENCHMARK, "p99 ratio followers/none", f"{ratio:.2f}", "-", None)
    ended = f"{exit_s:.2f} ({pool.ended_cleanly}/{n} ended)"
    print_summary(BENCHMARK, "API exit after SIGTERM s", ended, f"< {EXIT_TARGET_S:.0f}", exit_ok)


def uncapped_env(env: dict[str, str], jobs: int) -> dict[str, str]:
    """The API's settings with the per-user cap on queued+running training jobs (default 8)
    raised to `jobs`: the bench queues that many trainings as one user on purpose, to measure
    what their followers cost, not admission control."""
    return {**env, "MAX_ACTIVE_JOBS_TRAIN": str(max(jobs, 1))}


def run(stack: ExitStack, workdir: Path, opts: Options) -> None:
    logs = workdir / "logs"
    logs.mkdir()
    env = uncapped_env(service_env(workdir, start_redis(stack, workdir, logs)[1]), opts["jobs"])
    key = bench_key(env["REDIS_URL"])
    api, http = start_api(stack, env, logs, key)
    job_ids = queued_jobs(http, opts["jobs"])
    time_job_reads(http, job_ids, 20)  # warm-up: imports, connection, caches
    base, base_cpu = timed_phase(api, http, job_ids, opts["requests"])
    describe("0 followers", base, base_cpu, opts["requests"])
    pool = FollowerPool(str(http.base_url), key, job_ids, opts["followers"])
    print(f"{opts['followers']} followers attached in {pool.wait_attached():.2f} s", flush=True)
    time.sleep(SETTLE_S)
    loaded, loaded_cpu = timed_phase(api, http, job_ids, opts["requests"])
    describe(f"{opts['followers']} followers", loaded, loaded_cpu, opts["requests"])
    exit_s = stop_api(api)
    if not pool.join(timeout=10.0):
        print("some followers were still attached 10 s after the API exited")
    report(base, loaded, exit_s, pool, opts["followers"])


def main() -> None:
    opts = parse_options()
    raise_fd_limit(2 * opts["followers"])
    print(
        f"sse_followers: 1 uvicorn API process + redis-server, {opts['followers']} SSE followers "
        f"on {opts['jobs']} queued jobs; NOTE: {os.cpu_count()} cores shared by the followers, "
        f"the API and redis; {machine_load()}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-sse-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        try:
            run(stack, workdir, opts)
        except BaseException:
            print_log_tails(workdir / "logs")
            raise


if __name__ == "__main__":
    main()
