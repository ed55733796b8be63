"""Generate throughput with 16 concurrent clients: one inference worker, then several.

A private redis-server, the API and a train worker run as processes; a small char-LSTM is
trained over HTTP, so generate has a real run. Then, in the same run, each setup serves the
same load: `model-trainer worker --queues infer --processes K` (K = 1, the baseline, then K =
--workers), 16 client threads each sending `POST /v1/jobs/generate` (100 new tokens) and
learning the result as a client would (the job's SSE stream to its completed event, then one
`GET /v1/jobs/{id}`), back to back. Each setup first runs the load uncounted for --warmup
seconds (every worker process loads the run into its own model cache), then counts completed
round trips for --seconds. The ratio is jobs/s with K workers over jobs/s with one.

Run from the repository root: `python -m bench.generate_throughput [--workers 2] [--seconds 20]`.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TypedDict

import httpx
from bench.reference import corpus_path, machine_load, print_summary
from bench.service_latency import (
    CLI,
    EventTap,
    Options,
    Service,
    bench_key,
    generate_once,
    in_workdir,
    running,
    service_env,
    start_api,
    start_redis,
    train_served_run,
    upload_corpus,
    wait_for,
)
from rq import Queue, Worker
from rq.serializers import JSONSerializer

from platform_workers.redis_conn import RedisClient, redis_from_url

BENCHMARK = "generate_throughput"
CLIENTS = 16
STARTUP_TIMEOUT_S = 60.0


class Setup(TypedDict):
    """One measured setup: how many infer worker processes, what they sustained."""

    workers: int
    jobs: int
    seconds: float
    jobs_per_s: float
    p50_ms: float
    load: str


def parse_options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2, help="infer workers of the 2nd setup")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per setup")
    parser.add_argument("--warmup", type=float, default=8.0, help="uncounted seconds per setup")
    parser.add_argument("--train-steps", type=int, default=50, help="steps of the served run")
    parser.add_argument("--size", default="small", help="char-LSTM size of the served run")
    args = parser.parse_args()
    if args.workers < 2 or args.seconds <= 0 or args.warmup < 0:
        parser.error("--workers must be >= 2, --seconds > 0 and --warmup >= 0")
    return args


def workers_on(redis: RedisClient, queue: str) -> int:
    return len(Worker.all(queue=Queue(queue, connection=redis, serializer=JSONSerializer)))


class Load:
    """CLIENTS threads sending generate round trips back to back; `counting` says whether a
    finished round trip is counted (and its latency kept)."""

    def __init__(self, base_url: str, headers: dict[str, str], run_id: str) -> None:
        self._base_url, self._headers, self._run_id = base_url, headers, run_id
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.counting = False
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self._threads = [
            threading.Thread(target=self._client, args=(index,), daemon=True)
            for index in range(CLIENTS)
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _client(self, index: int) -> None:
        with httpx.Client(base_url=self._base_url, headers=self._headers, timeout=60) as http:
            seed = index * 1_000_000
            while not self._stop.is_set():
                seed += 1
                try:
                    done = generate_once(http, self._run_id, seed, "events")
                except Exception as error:
                    with self._lock:
                        self.errors.append(repr(error))
                    return
                with self._lock:
                    if self.counting and not self._stop.is_set():
                        self.latencies.append(done["total_ms"])

    def count_for(self, seconds: float) -> tuple[int, float]:
        """Round trips that finished within `seconds` of counting."""
        with self._lock:
            self.latencies.clear()
            self.counting = True
        start = time.perf_counter()
        time.sleep(seconds)
        with self._lock:
            self.counting = False
            return len(self.latencies), time.perf_counter() - start


def measure(service: Service, run_id: str, workers: int, args: argparse.Namespace) -> Setup:
    """Start K infer workers, load them, count, stop them."""
    command = [*CLI, "worker", "--queues", "infer", "--device", "cpu"]
    command += ["--processes", str(workers)]
    log = service["logs"] / f"infer-{workers}.log"
    with running(command, service["env"], log):
        wait_for(
            lambda: workers_on(service["redis"], "infer") == workers,
            timeout=STARTUP_TIMEOUT_S,
            what=f"{workers} infer workers",
        )
        base_url = str(service["http"].base_url)
        with Load(base_url, dict(service["http"].headers), run_id) as load:
            time.sleep(args.warmup)
            jobs, seconds = load.count_for(args.seconds)
            load_now = machine_load()
            latencies = list(load.latencies)
        if load.errors:
            raise RuntimeError(f"{len(load.errors)} clients failed, first: {load.errors[0]}")
    wait_for(lambda: workers_on(service["redis"], "infer") == 0, timeout=30, what="workers to stop")
    setup: Setup = {
        "workers": workers,
        "jobs": jobs,
        "seconds": seconds,
        "jobs_per_s": jobs / seconds,
        "p50_ms": statistics.median(latencies) if latencies else float("nan"),
        "load": load_now,
    }
    print(
        f"  {workers} infer worker(s): {jobs} round trips in {seconds:.1f} s = "
        f"{setup['jobs_per_s']:.1f} jobs/s, p50 {setup['p50_ms']:.1f} ms ({load_now})",
        flush=True,
    )
    return setup


def run(stack: ExitStack, workdir: Path, args: argparse.Namespace) -> None:
    logs = workdir / "logs"
    logs.mkdir()
    env = service_env(workdir, start_redis(stack, workdir, logs)[1])
    key = bench_key(env["REDIS_URL"])
    http = start_api(stack, env, logs, key)[1]
    train = [*CLI, "worker", "--queues", "train", "--device", "cpu"]
    stack.enter_context(running(train, env, logs / "train.log"))
    redis = redis_from_url(env["REDIS_URL"])
    stack.callback(redis.close)
    wait_for(
        lambda: workers_on(redis, "train") == 1, timeout=STARTUP_TIMEOUT_S, what="the train worker"
    )
    service: Service = {"env": env, "logs": logs, "redis": redis, "http": http}
    tap = EventTap(redis)
    stack.callback(tap.close)
    opts: Options = {"n": 2, "train_steps": args.train_steps, "model_size": args.size}
    run_id = train_served_run(service, tap, upload_corpus(http, corpus_path()), opts)
    print(
        f"{CLIENTS} clients, {args.warmup:.0f} s warm-up + {args.seconds:.0f} s counted per setup",
        flush=True,
    )
    baseline = measure(service, run_id, 1, args)
    improved = measure(service, run_id, args.workers, args)
    ratio = improved["jobs_per_s"] / baseline["jobs_per_s"]
    print()
    print(f"{'setup':<18} {'jobs/s':>8} {'p50 ms':>8}  load during the run")
    for setup in (baseline, improved):
        name = f"{setup['workers']} infer worker(s)"
        print(f"{name:<18} {setup['jobs_per_s']:>8.1f} {setup['p50_ms']:>8.1f}  {setup['load']}")
    print(f"ratio {args.workers} workers / 1 worker: {ratio:.2f}")
    print(f"RESULT generate_jobs_per_s_1_worker={baseline['jobs_per_s']:.1f}")
    print(f"RESULT generate_jobs_per_s_{args.workers}_workers={improved['jobs_per_s']:.1f}")
    print(
        f"RESULT generate_throughput_ratio={ratio:.2f} target>1 {'PASS' if ratio > 1 else 'FAIL'}"
    )
    print_summary(BENCHMARK, "jobs/s ratio K/1 workers", f"{ratio:.2f}", "> 1", ratio > 1)


def main() -> None:
    args = parse_options()
    in_workdir(
        "generate_throughput: redis + API + train worker + K infer workers as processes",
        lambda stack, workdir: run(stack, workdir, args),
    )


if __name__ == "__main__":
    main()
