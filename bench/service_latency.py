"""How long the running service takes to react: submit→`started`, submit→first training step,
and a warm generate round trip.

A private redis-server, the API and one worker (`--queues train,infer`) run as processes, as in
production, so the figures include HTTP, the job record, RQ's enqueue and dequeue, and the
event publication. A small char-LSTM is trained over HTTP first, so generate has a real run.

- submit→started: the clock starts before `POST /v1/jobs/train` and stops when this process
  receives the job's `trainer.job.started.v1` on pub/sub (a listener thread stamps each
  message as it arrives). Each job finishes, and the train worker is idle again, before the
  next one is sent, so every sample is an idle worker picking up a job.
- submit→first step: the same tiny train jobs (logging every step) until this process
  receives the job's `trainer.metrics.progress.v1` for step 1, published right after the first
  optimizer step. Each job is sent once the worker's process tree is quiet (its spare horse has
  warmed up), and the split says where the time went: submit→started (dequeue),
  started→`trainer.metrics.config.v1` (the horse takes the job, reads and tokenizes the corpus,
  builds the model), config→step 1 (the loop's setup and the first step). The worker runs with
  `--device cpu`, so no device probe is timed.
- generate round trip: `POST /v1/jobs/generate` (100 new tokens), then the client learns the
  result three ways, alternating in the same run, after one uncounted warm-up generate loaded
  the run into the inference worker's model cache: `wait` sends one long-polling
  `GET /v1/jobs/{id}?wait_s=30`, answered the moment the job ends; `poll` sends
  `GET /v1/jobs/{id}` every 2 ms until the record says completed; `events` follows
  `GET /v1/jobs/{id}/events` (SSE) until its `trainer.job.completed.v1`, then sends one
  `GET /v1/jobs/{id}` for the result.

Run from the repository root: `python -m bench.service_latency [--n 30] [--train-steps 100]`.
"""

from __future__ import annotations

import argparse
import os
import queue
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import TypedDict

import httpx
from bench.reference import corpus_path, machine_load, print_summary
from redis.client import PubSub
from rq import Queue, Worker
from rq.serializers import JSONSerializer

from model_trainer.contracts.jobs import DOMAIN
from model_trainer.storage.api_keys import CreatedKey, create_key
from platform_core.json_types import (
    JSONObject,
    JSONValue,
    PayloadError,
    load_json_object,
    require_str,
)
from platform_workers.keys import events_channel
from platform_workers.redis_conn import RedisClient, redis_from_url
from platform_workers.redis_server import redis_server_command

BENCHMARK = "service_latency"
CORPUS_BYTES = 200_000
STARTED_TARGET_MS = 100.0
FIRST_STEP_TARGET_MS = 1500.0
GENERATE_TARGET_MS = 30.0
NEW_TOKENS = 100
POLL_INTERVAL_S = 0.002
WAIT_S = 30.0
STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
EVENT_TIMEOUT_S = 30.0
JOB_TIMEOUT_S = 180.0
TRAIN_TIMEOUT_S = 600.0
IDLE_SETTLE_S = 0.1
STARTED = "trainer.job.started.v1"
CONFIG = "trainer.metrics.config.v1"
STEPPED = "trainer.metrics.progress.v1"
QUIET_WINDOW_S = 0.3
ENDED = ("trainer.job.completed.v1", "trainer.job.failed.v1")
CLI = (sys.executable, "-m", "model_trainer.cli")
BENCH_USER = "bench"
# One worker process per queue; a CPU device class, so no start or job pays a device probe.
WORKER_ARGS = ("worker", "--queues", "train,infer", "--device", "cpu")


class Options(TypedDict):
    n: int
    train_steps: int
    model_size: str


class Service(TypedDict):
    """The processes' shared settings, and this process's handles on Redis and the API."""

    env: dict[str, str]
    logs: Path
    redis: RedisClient
    http: httpx.Client


class Stamped(TypedDict):
    """One pub/sub event as this process received it: when, whose, what."""

    at: float
    job_id: str
    type: str
    event: JSONObject


class FirstStep(TypedDict):
    """One tiny training's milliseconds from before its submit to three of its events."""

    started_ms: float
    config_ms: float
    first_step_ms: float


class Generated(TypedDict):
    """One generate round trip and how its record splits the time."""

    total_ms: float
    queued_ms: float
    worker_ms: float


def parse_options() -> Options:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=30, help="samples per figure (>= 2)")
    parser.add_argument("--train-steps", type=int, default=100, help="steps of the served run")
    parser.add_argument("--size", default="small", help="char-LSTM size of the served run")
    args = parser.parse_args()
    if args.n < 2:
        parser.error("--n must be at least 2 (a percentile needs two samples)")
    return {"n": int(args.n), "train_steps": int(args.train_steps), "model_size": str(args.size)}


# ---------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(check: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll `check` until it holds; every wait in these benchmarks is bounded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


def descendants(pid: int) -> list[int]:
    """Every process below `pid`: the worker's children and RQ's spawned work horses (which
    sit in process groups of their own), so a hung shutdown can still kill them all."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry.name))
    found: list[int] = []
    frontier = [pid]
    while frontier:
        children = parents.get(frontier.pop(), [])
        found.extend(children)
        frontier.extend(children)
    return found


def stop_process(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM (RQ and uvicorn shut down cleanly on it), then SIGKILL the whole tree."""
    if process.poll() is not None:
        return
    below = descendants(process.pid)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        for pid in [process.pid, *below, *descendants(process.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        process.wait()


@contextmanager
def running(
    command: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process writing to `log`, stopped however the benchmark leaves the block."""
    with log.open("ab") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        stop_process(process)


def start_redis(stack: ExitStack, workdir: Path, logs: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A private redis-server on a free port that keeps nothing on disk: (process, URL)."""
    port = free_port()
    command = redis_server_command(port, workdir)
    process = stack.enter_context(running(command, dict(os.environ), logs / "redis.log"))

    def answers() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    wait_for(answers, timeout=10, what="redis-server")
    return process, f"redis://127.0.0.1:{port}/0"


def service_env(workdir: Path, redis_url: str) -> dict[str, str]:
    """The settings every service process reads, all inside the benchmark's temp dir."""
    env = dict(os.environ)
    env.update(
        REDIS_URL=redis_url,
        ARTIFACTS_ROOT=str(workdir / "artifacts"),
        DATA_ROOT=str(workdir / "data"),
        PYTHONUNBUFFERED="1",
    )
    return env


def bench_key(redis_url: str, user: str = BENCH_USER) -> CreatedKey:
    """An API key for a (non-admin) user on the benchmark's fresh Redis: every /v1 route asks
    for one, so the figures include checking it, as every real request does."""
    redis = redis_from_url(redis_url)
    try:
        return create_key(redis, user)
    finally:
        redis.close()


def bearer(key: CreatedKey) -> dict[str, str]:
    """The header that authenticates a request as the key's user."""
    return {"Authorization": f"Bearer {key['key']}"}


def answers_200(http: httpx.Client, path: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return http.get(path).status_code == 200
        except httpx.TransportError:
            return False

    return check


def start_api(
    stack: ExitStack, env: dict[str, str], logs: Path, key: CreatedKey
) -> tuple[subprocess.Popen[bytes], httpx.Client]:
    """`model-trainer api` on a free port: (process, keep-alive client sending `key`) once
    /healthz answers."""
    port = free_port()
    command = [*CLI, "api", "--port", str(port)]
    process = stack.enter_context(running(command, env, logs / "api.log"))
    http = stack.enter_context(
        httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=bearer(key), timeout=30.0)
    )
    wait_for(answers_200(http, "/healthz"), timeout=STARTUP_TIMEOUT_S, what="the API")
    return process, http


def print_log_tails(logs: Path, lines: int = 15) -> None:
    """What the service processes said last, so a failed run can be diagnosed."""
    for log in sorted(logs.glob("*.log")):
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        print(f"--- last lines of {log.name} ---", *tail, sep="\n", file=sys.stderr)


# ---------------------------------------------------------------- HTTP and events


def submit(http: httpx.Client, job_type: str, body: dict[str, JSONValue]) -> str:
    """POST a job; anything but 202 stops the benchmark with the API's error body."""
    response = http.post(f"/v1/jobs/{job_type}", json=body)
    if response.status_code != 202:
        raise RuntimeError(f"{job_type} refused: {response.status_code} {response.text}")
    return require_str(load_json_object(response.content), "job_id")


def upload_corpus(http: httpx.Client, path: Path) -> str:
    """The first CORPUS_BYTES of the corpus (cut at a line end), uploaded like a user would."""
    text = path.read_bytes()[:CORPUS_BYTES]
    text = text[: text.rfind(b"\n") + 1] or text
    headers = {"content-type": "text/plain; charset=utf-8"}
    response = http.post("/v1/corpora", content=text, headers=headers)
    response.raise_for_status()
    return require_str(load_json_object(response.content), "corpus_id")


class EventTap:
    """Every event on `trainer:events`, stamped by a listener thread the moment it arrives.

    Stamping in a thread keeps the figure honest: a `started` that lands while the main thread
    still waits for the POST's answer is timed when it arrived, not when it was looked at.
    """

    def __init__(self, redis: RedisClient) -> None:
        self._pubsub = PubSub(redis.connection_pool)
        self._pubsub.subscribe(events_channel(DOMAIN))
        self._arrived: queue.Queue[Stamped] = queue.Queue()
        self._held: list[Stamped] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="event-tap", daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            message = self._pubsub.get_message(timeout=0.1)
            at = time.perf_counter()
            if message is None or message["type"] != "message":
                continue
            data = message["data"]
            try:
                event = load_json_object(data if isinstance(data, bytes) else str(data))
                self._arrived.put(
                    {
                        "at": at,
                        "job_id": require_str(event, "job_id"),
                        "type": require_str(event, "type"),
                        "event": event,
                    }
                )
            except PayloadError:
                continue

    def next_of(self, job_id: str, types: tuple[str, ...], timeout: float) -> Stamped:
        """The first event of `job_id` with one of `types` (earlier others of it are dropped)."""
        deadline = time.monotonic() + timeout
        while True:
            for index, held in enumerate(self._held):
                if held["job_id"] == job_id and held["type"] in types:
                    return self._held.pop(index)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {types} event for job {job_id} within {timeout} s")
            try:
                self._held.append(self._arrived.get(timeout=left))
            except queue.Empty:
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._pubsub.close()


def ended(tap: EventTap, job_id: str, timeout: float = JOB_TIMEOUT_S) -> None:
    """Wait for the job's completed (or failed) event; a failure stops the benchmark."""
    last = tap.next_of(job_id, ENDED, timeout)
    if last["type"] != "trainer.job.completed.v1":
        raise RuntimeError(f"job {job_id} failed: {last['event']}")


def wait_worker_idle(redis: RedisClient, queue_name: str) -> None:
    """Until RQ's worker on `queue_name` finished its bookkeeping and waits for work again."""
    rq_queue = Queue(queue_name, connection=redis, serializer=JSONSerializer)

    def idle() -> bool:
        workers = Worker.all(queue=rq_queue)
        return bool(workers) and all(worker.get_state() == "idle" for worker in workers)

    wait_for(idle, timeout=JOB_TIMEOUT_S, what=f"the {queue_name} worker to be idle")
    time.sleep(IDLE_SETTLE_S)


# ---------------------------------------------------------------- the measurements


def tiny_train_body(corpus_id: str) -> dict[str, JSONValue]:
    """A training that ends within a few seconds: the figure is about starting, not training."""
    return {
        "model_family": "char_lstm",
        "model_size": "tiny",
        "corpus_id": corpus_id,
        "max_seq_len": 32,
        "batch_size": 8,
        "max_steps": 3,
        "eval_max_batches": 2,
        "checkpoint_every_steps": None,
        "device": "cpu",
    }


def train_served_run(service: Service, tap: EventTap, corpus_id: str, opts: Options) -> str:
    """The run generate samples from: a char-LSTM trained over HTTP, like a user would."""
    body: dict[str, JSONValue] = {
        "model_family": "char_lstm",
        "model_size": opts["model_size"],
        "corpus_id": corpus_id,
        "max_steps": opts["train_steps"],
        "learning_rate": 4e-3,
        "warmup_steps": min(50, opts["train_steps"] // 10),
        "eval_max_batches": 5,
        "checkpoint_every_steps": None,
        "device": "cpu",
    }
    start = time.perf_counter()
    job_id = submit(service["http"], "train", body)
    ended(tap, job_id, TRAIN_TIMEOUT_S)
    record = load_json_object(service["http"].get(f"/v1/jobs/{job_id}").content)
    run_id = require_str(record, "run_id")
    took = time.perf_counter() - start
    print(f"trained {opts['model_size']} char-LSTM run {run_id}: {took:.1f} s", flush=True)
    return run_id


def cpu_ticks(pids: list[int]) -> int:
    """CPU time (clock ticks, user + system) the processes have used so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total


def wait_quiet(root: int, timeout: float = JOB_TIMEOUT_S) -> None:
    """Until `root` and every process below it used no CPU for QUIET_WINDOW_S: the train
    worker's spare horse has warmed up and waits for a job."""

    def quiet() -> bool:
        pids = [root, *descendants(root)]
        before = cpu_ticks(pids)
        time.sleep(QUIET_WINDOW_S)
        return cpu_ticks(pids) == before

    wait_for(quiet, timeout=timeout, what="the worker's processes to be quiet")


def step_one(tap: EventTap, job_id: str) -> Stamped:
    """The job's first metrics progress event of step 1 (logged at every step)."""
    while True:
        stepped = tap.next_of(job_id, (STEPPED,), EVENT_TIMEOUT_S)
        if stepped["event"].get("step") == 1:
            return stepped


def measure_first_steps(
    service: Service, worker: subprocess.Popen[bytes], tap: EventTap, corpus_id: str, n: int
) -> list[FirstStep]:
    """Tiny trainings, one at a time, each sent to an idle worker whose spare is warm."""
    samples: list[FirstStep] = []
    for index in range(n):
        wait_worker_idle(service["redis"], "train")
        wait_quiet(worker.pid)
        t0 = time.perf_counter()
        # Logging every step: step 1's metrics event is published as the step is done.
        body = {**tiny_train_body(corpus_id), "log_every_steps": 1}
        job_id = submit(service["http"], "train", body)
        started = tap.next_of(job_id, (STARTED,), EVENT_TIMEOUT_S)
        config = tap.next_of(job_id, (CONFIG,), EVENT_TIMEOUT_S)
        stepped = step_one(tap, job_id)
        samples.append(
            {
                "started_ms": (started["at"] - t0) * 1000,
                "config_ms": (config["at"] - t0) * 1000,
                "first_step_ms": (stepped["at"] - t0) * 1000,
            }
        )
        ended(tap, job_id)
        last = samples[-1]
        print(
            f"  train {index + 1:>3}/{n}: started {last['started_ms']:7.2f} ms, "
            f"config {last['config_ms']:7.1f} ms, first step {last['first_step_ms']:7.1f} ms",
            flush=True,
        )
    return samples


def poll_completed(http: httpx.Client, job_id: str) -> JSONObject:
    """GET the record every POLL_INTERVAL_S until it is completed (failed stops the run)."""
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        record = load_json_object(http.get(f"/v1/jobs/{job_id}").content)
        status = require_str(record, "status")
        if status == "completed":
            return record
        if status in ("failed", "cancelled"):
            raise RuntimeError(f"generate job {job_id} ended {status}: {record.get('error')}")
        time.sleep(POLL_INTERVAL_S)
    raise TimeoutError(f"generate job {job_id} not completed within {JOB_TIMEOUT_S} s")


def seconds_between(record: JSONObject, first: str, last: str) -> float:
    """Seconds between two of the record's ISO timestamps (written by different processes)."""
    begin = datetime.fromisoformat(require_str(record, first))
    end = datetime.fromisoformat(require_str(record, last))
    return (end - begin).total_seconds()


def follow_to_result(http: httpx.Client, job_id: str) -> JSONObject:
    """Follow the job's SSE stream until it ends (after the terminal event), then read the
    record once: no polling, the API wakes the stream on the job's pub/sub event."""
    ended_as = ""
    with http.stream("GET", f"/v1/jobs/{job_id}/events", timeout=JOB_TIMEOUT_S) as stream:
        for line in stream.iter_lines():
            if line.startswith("event: "):
                ended_as = line.removeprefix("event: ")
    record = load_json_object(http.get(f"/v1/jobs/{job_id}").content)
    if require_str(record, "status") != "completed":
        raise RuntimeError(f"generate job {job_id} ended as {ended_as}: {record.get('error')}")
    return record


def wait_completed(http: httpx.Client, job_id: str) -> JSONObject:
    """One long-polling `GET /v1/jobs/{id}?wait_s=`: the API answers the moment the job ends."""
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        response = http.get(f"/v1/jobs/{job_id}", params={"wait_s": WAIT_S})
        record = load_json_object(response.content)
        status = require_str(record, "status")
        if status == "completed":
            return record
        if status in ("failed", "cancelled"):
            raise RuntimeError(f"generate job {job_id} ended {status}: {record.get('error')}")
    raise TimeoutError(f"generate job {job_id} not completed within {JOB_TIMEOUT_S} s")


LEARNERS: dict[str, Callable[[httpx.Client, str], JSONObject]] = {
    "wait": wait_completed,
    "poll": poll_completed,
    "events": follow_to_result,
}


def generate_body(run_id: str, seed: int) -> dict[str, JSONValue]:
    return {
        "run_id": run_id,
        "prompt_text": "ROMEO:\n",
        "max_new_tokens": NEW_TOKENS,
        "stop_on_eos": False,
        "seed": seed,
    }


def generate_once(http: httpx.Client, run_id: str, seed: int, learn: str = "poll") -> Generated:
    """One round trip: submit, learn the result (`LEARNERS`); the record splits the time."""
    t0 = time.perf_counter()
    job_id = submit(http, "generate", generate_body(run_id, seed))
    record = LEARNERS[learn](http, job_id)
    total_ms = (time.perf_counter() - t0) * 1000
    return {
        "total_ms": total_ms,
        "queued_ms": seconds_between(record, "created_at", "started_at") * 1000,
        "worker_ms": seconds_between(record, "started_at", "finished_at") * 1000,
    }


def measure_generate(service: Service, run_id: str, n: int) -> dict[str, list[Generated]]:
    """N warm round trips per way of learning the result, alternating, each sent once the
    inference worker is idle again."""
    wait_worker_idle(service["redis"], "infer")
    warm = generate_once(service["http"], run_id, seed=0)
    print(f"  generate warm-up (loads the run): {warm['total_ms']:7.2f} ms", flush=True)
    samples: dict[str, list[Generated]] = {learn: [] for learn in LEARNERS}
    for index in range(n):
        for learn, taken in samples.items():
            wait_worker_idle(service["redis"], "infer")
            taken.append(generate_once(service["http"], run_id, index + 1, learn))
            last = taken[-1]
            print(
                f"  generate {index + 1:>3}/{n} ({learn:>6}): {last['total_ms']:7.2f} ms "
                f"(record: queued {last['queued_ms']:6.1f} ms, "
                f"worker {last['worker_ms']:6.1f} ms)",
                flush=True,
            )
    return samples


# ---------------------------------------------------------------- reporting


def percentile(values: list[float], pct: int) -> float:
    """Linear-interpolated percentile (inclusive method: max at 100)."""
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def report(figure: str, values: list[float], target_ms: float) -> None:
    """p50/p95/max, the p50 verdict, a RESULT line and bench/run.py's SUMMARY line."""
    p50, p95 = statistics.median(values), percentile(values, 95)
    passed = p50 <= target_ms
    verdict = "PASS" if passed else "FAIL"
    print(
        f"{figure}: p50 {p50:.1f} ms  p95 {p95:.1f} ms  max {max(values):.1f} ms  "
        f"(n={len(values)})  target p50 <= {target_ms:.0f} ms  {verdict}"
    )
    print(f"RESULT {figure}_p50_ms={p50:.1f} target<={target_ms:.0f} {verdict}")
    print(f"RESULT {figure}_p95_ms={p95:.1f}")
    print_summary(BENCHMARK, f"{figure} p50 ms", f"{p50:.1f}", f"<= {target_ms:.0f}", passed)
    print_summary(BENCHMARK, f"{figure} p95 ms", f"{p95:.1f}", "-", None)


def report_first_step_split(samples: list[FirstStep]) -> None:
    """Where a training's first step waits, by its events' arrival (medians)."""
    started = statistics.median(s["started_ms"] for s in samples)
    config = statistics.median(s["config_ms"] - s["started_ms"] for s in samples)
    step = statistics.median(s["first_step_ms"] - s["config_ms"] for s in samples)
    print(
        f"first step split (medians): submit->started {started:.1f} ms, "
        f"started->config (horse takes the job, corpus, tokenizer, model) {config:.1f} ms, "
        f"config->step 1 (loop setup, first step) {step:.1f} ms"
    )


def report_generate_split(learn: str, samples: list[Generated]) -> None:
    """Where a round trip's time goes, by the record's own timestamps (medians)."""
    queued = statistics.median(s["queued_ms"] for s in samples)
    worker = statistics.median(s["worker_ms"] for s in samples)
    rest = statistics.median(s["total_ms"] - s["queued_ms"] - s["worker_ms"] for s in samples)
    print(
        f"generate split ({learn}, medians): created->started {queued:.1f} ms, "
        f"started->finished {worker:.1f} ms, HTTP submit + learning the result {rest:.1f} ms"
    )


# ---------------------------------------------------------------- main


def start_service(stack: ExitStack, workdir: Path) -> tuple[Service, subprocess.Popen[bytes]]:
    """redis-server, the API and one worker process (train + infer), ready for jobs."""
    logs = workdir / "logs"
    logs.mkdir()
    env = service_env(workdir, start_redis(stack, workdir, logs)[1])
    http = start_api(stack, env, logs, bench_key(env["REDIS_URL"]))[1]
    worker = stack.enter_context(running([*CLI, *WORKER_ARGS], env, logs / "w.log"))
    wait_for(answers_200(http, "/readyz"), timeout=STARTUP_TIMEOUT_S, what="workers (/readyz)")
    redis = redis_from_url(env["REDIS_URL"])
    stack.callback(redis.close)
    return {"env": env, "logs": logs, "redis": redis, "http": http}, worker


def run(stack: ExitStack, workdir: Path, opts: Options) -> None:
    service, worker = start_service(stack, workdir)
    tap = EventTap(service["redis"])
    stack.callback(tap.close)
    corpus_id = upload_corpus(service["http"], corpus_path())
    run_id = train_served_run(service, tap, corpus_id, opts)
    print(f"submit->started and ->first step: {opts['n']} tiny train jobs, one at a time")
    first_steps = measure_first_steps(service, worker, tap, corpus_id, opts["n"])
    print(f"generate round trip: {opts['n']} x {NEW_TOKENS} new tokens per way of learning it")
    generated = measure_generate(service, run_id, opts["n"])
    print()
    report("submit_to_started", [s["started_ms"] for s in first_steps], STARTED_TARGET_MS)
    report("submit_to_first_step", [s["first_step_ms"] for s in first_steps], FIRST_STEP_TARGET_MS)
    report_first_step_split(first_steps)
    for learn, samples in generated.items():
        report(f"generate_round_trip_{learn}", [s["total_ms"] for s in samples], GENERATE_TARGET_MS)
        report_generate_split(learn, samples)
    print(f"after the run: {machine_load()}")


def main() -> None:
    opts = parse_options()
    in_workdir(
        "service_latency: redis + API + 1 worker (train,infer) as processes",
        lambda stack, workdir: run(stack, workdir, opts),
    )


def in_workdir(setup: str, bench: Callable[[ExitStack, Path], None]) -> None:
    """Say what runs on how loaded a machine, then run a service benchmark in a temporary
    directory; the processes it enters on the stack stop when it ends, and a failure prints
    their last log lines first."""
    print(f"{setup}, {os.cpu_count()} cores shared with this process, {machine_load()}", flush=True)
    prefix = "bench-" + setup.split(":", 1)[0] + "-"
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        try:
            bench(stack, workdir)
        except BaseException:
            print_log_tails(workdir / "logs")
            raise


if __name__ == "__main__":
    main()
