"""`model-trainer`: train and sample models from the command line."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import get_args

import httpx
import orjson
import uvicorn
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from model_trainer.api.app import build_api
from model_trainer.api.http_protocol import OneWriteHttpProtocol
from model_trainer.api.routes.runs import FilterMetric, RunMetric
from model_trainer.api.schemas import train_options
from model_trainer.backends.presets import CHAR_LSTM_SIZES, MODEL_SIZES, check_model_size
from model_trainer.backends.registry import get_backend
from model_trainer.cli_args import (
    URL_ENV,
    Commands,
    HelpFormatter,
    add_command,
    add_connection_options,
)
from model_trainer.cli_schedules import SCHEDULE_HANDLERS, add_schedule_parsers
from model_trainer.cli_views import job_summary, jobs_table, objects, result_text
from model_trainer.client import (
    API_KEY_ENV,
    ApiError,
    BundleMismatch,
    StreamEnded,
    TrainerClient,
)
from model_trainer.contracts.defaults import make_generate_config
from model_trainer.contracts.jobs import (
    JOB_STATUSES,
    JOB_TYPES,
    QUEUE_NAMES,
    WORKER_DEVICE_CHOICES,
    parse_queue,
)
from model_trainer.contracts.limits import DEFAULT_LOG_TAIL
from model_trainer.contracts.model import (
    MODEL_FAMILIES,
    DeviceChoice,
    StepMetrics,
    TrainingAlert,
    TrainOutcome,
)
from model_trainer.contracts.train_config import TRAIN_DEFAULTS, TrainOptions, make_train_config
from model_trainer.contracts.validators import parse_model_family
from model_trainer.demo import run_demo
from model_trainer.errors import ModelTrainerError
from model_trainer.follow import render
from model_trainer.settings import Settings, load_settings, parse_worker_device
from model_trainer.storage.api_keys import create_key, list_keys, revoke_key
from model_trainer.storage.corpora import build_default_corpus, read_corpus
from model_trainer.storage.run_store import fetch_run
from model_trainer.storage.runs import run_dir
from model_trainer.tokenizers.char import CharTokenizer
from model_trainer.worker.device_class import worker_device
from model_trainer.worker.worker_entry import run_workers
from platform_core.job_logs import JobLogLine
from platform_core.json_types import (
    JSONValue,
    PayloadError,
    load_json_object,
    optional_object,
    optional_str,
    require_str,
)
from platform_core.structured_logs import configure_logging
from platform_workers.redis_conn import redis_from_url
from platform_workers.redis_server import RedisServerNotFound, wait_for_redis

DEFAULT_CORPUS = "stdlib.txt"
SHUTDOWN_GRACE_S = 3
# The exit status of a command stopped with Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED = 130
# Job types whose result `follow` prints as text when they complete.
SHOWN_RESULTS = ("generate", "score")


def _print_progress(metrics: StepMetrics) -> None:
    print(
        f"step {metrics['step']:>5}/{metrics['total_steps']}  epoch {metrics['epoch']}  "
        f"loss {metrics['loss']:.4f}  lr {metrics['learning_rate']:.2e}  "
        f"grad {metrics['grad_norm']:.3g}  {metrics['tokens_per_second']:,.0f} tok/s",
        flush=True,
    )


def _print_alert(alert: TrainingAlert) -> None:
    print(f"alert: {alert['message']}", flush=True)


def local_train_options(args: argparse.Namespace) -> TrainOptions:
    """The flags' recipe (a short, quick-learning run), then any `key=value` train option."""
    fields = dict(_field(item) for item in args.options)
    unknown = sorted(set(fields) - set(TRAIN_DEFAULTS))
    if unknown:
        raise ModelTrainerError(
            "INVALID_CONFIG",
            f"unknown train option {unknown[0]!r}; options are {', '.join(TRAIN_DEFAULTS)}",
            details={"field": unknown[0]},
        )
    recipe: TrainOptions = {
        **TRAIN_DEFAULTS,
        "max_seq_len": args.seq_len,
        "batch_size": args.batch_size,
        "learning_rate": args.lr,
        "max_steps": args.max_steps or None,
        "num_epochs": args.epochs,
        "seed": args.seed,
        "warmup_steps": min(50, args.max_steps // 10),
        "log_every_steps": args.log_every,
        "device": args.device,
    }
    return train_options({**recipe, **fields})


def local_train(args: argparse.Namespace, settings: Settings) -> TrainOutcome:
    """Train in this process (no queue): the library path the service's worker also takes."""
    family = parse_model_family(args.family)
    check_model_size(family, args.size)
    corpus_path = args.corpus or str(build_default_corpus(settings["data_root"] / DEFAULT_CORPUS))
    cfg = make_train_config(
        model_family=family,
        model_size=args.size,
        corpus_path=corpus_path,
        options=local_train_options(args),
    )
    corpus = read_corpus(corpus_path, settings)
    tokenizer = CharTokenizer.build(corpus["text"], f"char-{corpus['sha256'][:12]}")
    backend = get_backend(family)
    prepared = backend.prepare(cfg, settings, tokenizer=tokenizer)
    directory = run_dir(settings, args.run_id)
    print(
        f"training {family}/{args.size} on {corpus_path} ({corpus['bytes']:,} bytes) -> {directory}"
    )
    outcome = backend.train(
        cfg,
        settings,
        corpus=corpus,
        run_dir=str(directory),
        prepared=prepared,
        callbacks={
            "heartbeat": lambda _: None,
            "cancelled": lambda: False,
            "progress": _print_progress,
            "alert": _print_alert,
            "prune": None,
        },
    )
    print(
        f"done: {outcome['steps']} steps in {outcome['elapsed_s']:.1f}s, "
        f"train loss {outcome['loss']:.4f}, val loss {outcome['val_loss']} "
        f"(stopped: {outcome['stop_reason']})"
    )
    return outcome


def local_generate(args: argparse.Namespace, settings: Settings) -> list[str]:
    family = parse_model_family(args.family)
    backend = get_backend(family)
    prepared = backend.load(str(fetch_run(settings, args.run_id)), settings)
    cfg = make_generate_config(
        prompt_text=args.prompt,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
        num_return_sequences=args.num,
    )
    outcome = backend.generate(prepared=prepared, cfg=cfg, settings=settings)
    for index, text in enumerate(outcome["outputs"]):
        print(f"--- sample {index + 1} ---\n{text}")
    return outcome["outputs"]


def _client(args: argparse.Namespace) -> TrainerClient:
    return TrainerClient(args.url, api_key=args.api_key)


def keys_create(args: argparse.Namespace, settings: Settings) -> int:
    """Prints the new key once; only its hash is stored."""
    _print_json(
        dict(create_key(redis_from_url(settings["redis_url"]), args.user, admin=args.admin))
    )
    return 0


def keys_list(args: argparse.Namespace, settings: Settings) -> int:
    _print_json(list_keys(redis_from_url(settings["redis_url"])))
    return 0


def keys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    if revoke_key(redis_from_url(settings["redis_url"]), args.key_id):
        print(f"revoked {args.key_id}")
        return 0
    print(f"error: no key {args.key_id}", file=sys.stderr)
    return 2


def _print_json(value: object) -> None:
    print(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def _field(text: str) -> tuple[str, JSONValue]:
    """`key=value`; a value that parses as JSON (numbers, null, true) is JSON, else a string."""
    key, sep, raw = text.partition("=")
    if not sep:
        raise ModelTrainerError("INVALID_CONFIG", f"expected key=value, got {text!r}")
    try:
        return key, load_json_object(f'{{"v": {raw}}}')["v"]
    except PayloadError:
        return key, raw


def _after_shutdown(signum: int, frame: FrameType | None) -> None:
    """Receives the SIGTERM uvicorn re-raises once its graceful shutdown is done."""


class _ApiServer(uvicorn.Server):
    """uvicorn waits for open responses before its lifespan shutdown, and an SSE follower's
    response never ends by itself: the hub ends them all the moment the signal arrives."""

    def __init__(self, config: uvicorn.Config, on_exit: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_exit = on_exit

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._on_exit()
        super().handle_exit(sig, frame)


def api(args: argparse.Namespace, settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT, then stop within SHUTDOWN_GRACE_S even if a request hangs.

    uvicorn re-raises a caught SIGTERM after shutting down; with the default handler that kills
    the process before atexit handlers (coverage, log flushing) run, so the re-raised signal
    lands in a handler that lets `main` return normally."""
    signal.signal(signal.SIGTERM, _after_shutdown)
    warn_if_redis_unreachable(settings)
    app, hub = build_api(settings)
    # uvicorn's own lines (access log included) become JSON lines like ours.
    configure_logging(settings["log_level"])
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        log_config=None,
        http=OneWriteHttpProtocol,
    )
    # The last statement on purpose: under uvloop, coverage loses this frame once the server
    # has run, so a line after it would never count as executed (main returns 0 for None).
    _ApiServer(config, hub.close_soon).run()


def warn_if_redis_unreachable(settings: Settings) -> None:
    """The API starts anyway: it answers 503 (and /readyz says so) until Redis answers."""
    try:
        wait_for_redis(settings["redis_url"], timeout_s=0)
    except (RedisConnectionError, RedisTimeoutError) as error:
        print(
            f"warning: {redis_unreachable(error)}; answering 503 REDIS_UNAVAILABLE until it does",
            file=sys.stderr,
        )


def worker(args: argparse.Namespace, settings: Settings) -> int:
    queues = [parse_queue(name) for name in args.queues.split(",") if name]
    if args.processes < 1:
        raise ModelTrainerError(
            "INVALID_CONFIG",
            f"--processes must be >= 1, got {args.processes}",
            details={"field": "--processes"},
        )
    choice = settings["worker_device"] if args.device is None else args.device
    # Here, not in each queue's child process, so a missing Redis or GPU is one line, not a
    # restart loop.
    device = worker_device(parse_worker_device(choice, "--device"))
    wait_for_redis(settings["redis_url"], timeout_s=0)
    configure_logging(settings["log_level"])
    return run_workers(queues, settings, device, args.processes)


def upload(args: argparse.Namespace, settings: Settings) -> int:
    _print_json(_client(args).upload_corpus(Path(args.path).read_bytes()))
    return 0


def submit(args: argparse.Namespace, settings: Settings) -> int:
    body = dict(_field(item) for item in args.fields)
    if args.model is not None:
        body["model"] = args.model
    client = _client(args)
    accepted = client.submit(args.job_type, body)
    _print_json(accepted)
    job_id = accepted.get("job_id")
    if args.follow and isinstance(job_id, str):
        return _follow(client, job_id)
    return 0


def _follow(client: TrainerClient, job_id: str) -> int:
    """Show the job's events until it ends; then what a generate or score job produced."""
    if not render(client.events(job_id)):
        return 1
    record = client.job(job_id)
    job_type = require_str(record, "type")
    result = optional_object(record, "result")
    if job_type in SHOWN_RESULTS and result is not None:
        print(result_text(job_type, result))
    return 0


def export(args: argparse.Namespace, settings: Settings) -> int:
    """Submit an export of a run, wait for it (showing progress with --follow), download it."""
    client = _client(args)
    accepted = client.submit("export", {"run_id": args.run_id})
    _print_json(accepted)
    job_id = str(accepted["job_id"])
    if args.no_wait:
        return 0
    if args.follow:
        render(client.events(job_id))
        record = client.job(job_id)
    else:
        record = client.wait(job_id)
    if record.get("status") != "completed":
        print(f"error: export job {job_id} ended {record.get('status')}", file=sys.stderr)
        return 1
    out = Path(args.out or f"{args.run_id}-{job_id}.tar.gz")
    sha256 = client.download_bundle(job_id, out)
    _print_json(
        {"job_id": job_id, "bundle": str(out), "bytes": out.stat().st_size, "sha256": sha256}
    )
    return 0


def follow(args: argparse.Namespace, settings: Settings) -> int:
    """A missing job, API or Redis is said at once; only a stream that ends early is retried."""
    client = _client(args)
    client.job(args.job_id)
    return _follow(client, args.job_id)


def job(args: argparse.Namespace, settings: Settings) -> int:
    """The job's status, then its result (generated text and scores as text)."""
    record = _client(args).job(args.job_id)
    if args.json:
        _print_json(record)
        return 0
    print(job_summary(record))
    result = optional_object(record, "result")
    if result is not None:
        print(f"result:\n{result_text(require_str(record, 'type'), result)}")
    return 0


def jobs(args: argparse.Namespace, settings: Settings) -> int:
    """A table of your jobs (--json: the API's answer), and how to ask for the next page."""
    filters: dict[str, str | int] = {"limit": args.limit}
    options = {"status": args.status, "type": args.type, "cursor": args.cursor}
    filters.update({name: value for name, value in options.items() if value is not None})
    page = _client(args).jobs(**filters)
    if args.json:
        _print_json(page)
        return 0
    listed = objects(page.get("jobs"), "jobs")
    print(jobs_table(listed) if listed else "no jobs")
    cursor = optional_str(page, "next_cursor")
    if cursor is not None:
        print(f"more: model-trainer jobs --cursor {cursor}")
    return 0


def logs(args: argparse.Namespace, settings: Settings) -> int:
    for line in _client(args).job_logs(args.job_id, args.tail):
        print(format_log_line(line))
    return 0


def format_log_line(line: JobLogLine) -> str:
    """`ts level logger: message`, then the line's structured fields as compact JSON."""
    text = f"{line['ts']} {line['level']} {line['logger']}: {line['message']}"
    fields = line.get("fields")
    return text if fields is None else f"{text} {orjson.dumps(fields).decode()}"


def cancel(args: argparse.Namespace, settings: Settings) -> int:
    _print_json(_client(args).cancel(args.job_id))
    return 0


def models_create(args: argparse.Namespace, settings: Settings) -> int:
    _print_json(_client(args).create_model(args.name, args.description))
    return 0


def runs_list(args: argparse.Namespace, settings: Settings) -> int:
    query: dict[str, str | int | float] = {"sort": args.sort, "limit": args.limit}
    options = {"order": args.order, "model_family": args.family, "metric": args.metric}
    query.update({name: value for name, value in options.items() if value is not None})
    bounds = {"min": args.min, "max": args.max}
    query.update({name: value for name, value in bounds.items() if value is not None})
    _print_json(_client(args).runs(**query))
    return 0


def runs_metrics(args: argparse.Namespace, settings: Settings) -> int:
    query = {"offset": args.offset, "limit": args.limit}
    if args.points is not None:
        query = {"points": args.points}
    _print_json(_client(args).run_metrics(args.run_id, **query))
    return 0


def runs_checkpoints(args: argparse.Namespace, settings: Settings) -> int:
    _print_json(_client(args).run_checkpoints(args.run_id))
    return 0


def runs_compare(args: argparse.Namespace, settings: Settings) -> int:
    _print_json(_client(args).compare_runs(args.run_ids))
    return 0


def studies_create(args: argparse.Namespace, settings: Settings) -> int:
    """The study request is a JSON file (`-` reads it from stdin): base, search_space, ..."""
    source = sys.stdin.read() if args.spec == "-" else Path(args.spec).read_text()
    client = _client(args)
    study = client.create_study(load_json_object(source))
    if not args.wait:
        _print_json(study)
        return 0
    return _wait_study(client, str(study["study_id"]), args.poll)


def _wait_study(client: TrainerClient, study_id: str, poll_s: float) -> int:
    """One line each time the study's counts change, then the ended study as JSON."""
    seen: object = None
    while True:
        study = client.study(study_id)
        counts = study["counts"]
        if counts != seen and isinstance(counts, dict):
            seen = counts
            trials = ", ".join(f"{n} {state}" for state, n in counts.items() if n) or "no trials"
            best = study["best_trial"]
            value = f"best val_loss {best['value']:.4f}" if isinstance(best, dict) else "no best"
            print(f"{study_id} {study['status']}: {trials}; {value}", flush=True)
        if study["status"] != "running":
            _print_json(study)
            return 0 if study["status"] == "completed" else 1
        time.sleep(poll_s)


def studies_list(args: argparse.Namespace, settings: Settings) -> int:
    _print_json(_client(args).studies())
    return 0


def studies_show(args: argparse.Namespace, settings: Settings) -> int:
    client = _client(args)
    if args.wait:
        return _wait_study(client, args.study_id, args.poll)
    _print_json(client.study(args.study_id))
    return 0


def studies_trials(args: argparse.Namespace, settings: Settings) -> int:
    _print_json(_client(args).study_trials(args.study_id))
    return 0


def studies_cancel(args: argparse.Namespace, settings: Settings) -> int:
    _print_json(_client(args).cancel_study(args.study_id))
    return 0


def models_list(args: argparse.Namespace, settings: Settings) -> int:
    _print_json(_client(args).models())
    return 0


def models_show(args: argparse.Namespace, settings: Settings) -> int:
    _print_json(_client(args).model(args.name))
    return 0


def models_register(args: argparse.Namespace, settings: Settings) -> int:
    _print_json(_client(args).register_version(args.name, args.run, args.step))
    return 0


def models_versions(args: argparse.Namespace, settings: Settings) -> int:
    _print_json(_client(args).versions(args.name, after=args.after, limit=args.limit))
    return 0


def models_promote(args: argparse.Namespace, settings: Settings) -> int:
    _print_json(_client(args).promote(args.name, args.alias, args.version, force=args.force))
    return 0


def models_rollback(args: argparse.Namespace, settings: Settings) -> int:
    _print_json(_client(args).rollback(args.name, args.alias))
    return 0


def models_compare(args: argparse.Namespace, settings: Settings) -> int:
    _print_json(_client(args).compare(args.name, args.versions))
    return 0


def demo(args: argparse.Namespace, settings: Settings) -> int:
    return run_demo(settings, size=args.size, max_steps=args.max_steps)


def _local_parsers(commands: Commands) -> None:
    train = add_command(commands, "local-train", "train in this process, no service")
    train.add_argument("--family", choices=MODEL_FAMILIES, default="char_lstm", help="model family")
    train.add_argument(
        "--size", choices=MODEL_SIZES, default="small", help="model size (the family's own)"
    )
    train.add_argument("--corpus", default=None, help="a text file; default: Python's stdlib")
    train.add_argument(
        "--max-steps", type=int, default=300, help="optimizer steps; 0: --epochs whole epochs"
    )
    train.add_argument("--epochs", type=int, default=1, help="passes over the corpus")
    train.add_argument("--seq-len", type=int, default=128, help="tokens per window")
    train.add_argument("--batch-size", type=int, default=32, help="windows per step")
    train.add_argument("--lr", type=float, default=4e-3, help="peak learning rate")
    train.add_argument("--log-every", type=int, default=25, help="steps between progress lines")
    train.add_argument(
        "--device", choices=get_args(DeviceChoice), default="auto", help="where to train"
    )
    train.add_argument("--seed", type=int, default=0, help="seeds weights and data order")
    train.add_argument(
        "--run-id", default=f"local-{int(time.time())}", help="the run directory's name"
    )
    train.add_argument(
        "options", nargs="*", help="any other train option as key=value, e.g. beta2=0.99"
    )
    generate = add_command(commands, "local-generate", "sample from a run, no service")
    generate.add_argument(
        "--family", choices=MODEL_FAMILIES, default="char_lstm", help="the run's model family"
    )
    generate.add_argument("--run-id", required=True, help="a run under ARTIFACTS_ROOT/runs")
    generate.add_argument("--seed", type=int, default=None, help="seeds sampling; default: random")
    generate.add_argument("--prompt", default="", help="the text to continue")
    generate.add_argument("--max-new-tokens", type=int, default=200, help="tokens to add")
    generate.add_argument(
        "--temperature", type=float, default=0.8, help="below 1: safer; above 1: wilder"
    )
    generate.add_argument(
        "--top-k", type=int, default=0, help="sample among the k likeliest; 0: all"
    )
    generate.add_argument(
        "--top-p", type=float, default=1.0, help="sample within this probability mass; 1: all"
    )
    generate.add_argument("--num", type=int, default=1, help="samples to draw")


def _service_parsers(commands: Commands) -> None:
    api_cmd = add_command(commands, "api", "serve the HTTP API (uvicorn)")
    api_cmd.add_argument("--host", default="127.0.0.1", help="address to listen on")
    api_cmd.add_argument("--port", type=int, default=8000, help="port to listen on")
    worker_cmd = add_command(commands, "worker", "run RQ workers (talks to Redis)")
    worker_cmd.add_argument(
        "--queues",
        default=",".join(QUEUE_NAMES),
        help=f"comma-separated, one worker process each; of {', '.join(QUEUE_NAMES)}",
    )
    worker_cmd.add_argument(
        "--device",
        choices=WORKER_DEVICE_CHOICES,
        help="the device class to advertise: cuda workers also take jobs that need CUDA "
        "(default: WORKER_DEVICE, else auto: cuda where torch finds it)",
    )
    worker_cmd.add_argument(
        "--processes",
        type=int,
        default=1,
        help="worker processes per queue (default 1); several infer workers serve that many "
        "requests at once, each keeping its own model cache",
    )
    add_command(commands, "upload", "upload a corpus file", api=True).add_argument(
        "path", help="a UTF-8 text file"
    )
    submit_cmd = add_command(
        commands, "submit", "submit a job: submit train key=value ...", api=True
    )
    submit_cmd.add_argument("job_type", choices=JOB_TYPES, help="what kind of job")
    submit_cmd.add_argument(
        "fields", nargs="*", help="request fields as key=value (see /docs for each type's)"
    )
    submit_cmd.add_argument(
        "--follow",
        action="store_true",
        help="then show its progress; generate and score print their result",
    )
    submit_cmd.add_argument(
        "--model",
        default=None,
        help="eval/score/generate/export: a registered model (name@alias or name/version) "
        "instead of run_id",
    )
    export_cmd = add_command(
        commands,
        "export",
        "export a run as a .tar.gz bundle (HF files, ONNX, inference.py)",
        api=True,
    )
    export_cmd.add_argument("run_id", help="a finished run of yours")
    export_cmd.add_argument("--out", default=None, help="the file; default RUN_ID-JOB_ID.tar.gz")
    export_cmd.add_argument("--follow", action="store_true", help="show progress while waiting")
    export_cmd.add_argument("--no-wait", action="store_true", help="only submit the job")
    follow_cmd = add_command(
        commands, "follow", "show a job's progress live until it ends", api=True
    )
    follow_cmd.add_argument("job_id", help="the job to follow")
    job_cmd = add_command(commands, "job", "a job's status and result", api=True)
    job_cmd.add_argument("job_id", help="the job to show")
    job_cmd.add_argument("--json", action="store_true", help="print the record as JSON")
    jobs_cmd = add_command(commands, "jobs", "list your jobs, newest first", api=True)
    jobs_cmd.add_argument(
        "--status", choices=JOB_STATUSES, default=None, help="only jobs in this status"
    )
    jobs_cmd.add_argument("--type", choices=JOB_TYPES, default=None, help="only this job type")
    jobs_cmd.add_argument("--limit", type=int, default=20, help="jobs per page (1-200)")
    jobs_cmd.add_argument("--cursor", default=None, help="the page a previous listing named")
    jobs_cmd.add_argument("--json", action="store_true", help="print the API's answer as JSON")
    add_command(commands, "cancel", "cancel a job", api=True).add_argument(
        "job_id", help="the job to cancel"
    )
    logs_cmd = add_command(
        commands, "logs", "a job's log lines from its worker, oldest first", api=True
    )
    logs_cmd.add_argument("job_id", help="the job whose lines to show")
    logs_cmd.add_argument("--tail", type=int, default=DEFAULT_LOG_TAIL, help="the newest N lines")
    keys = add_command(commands, "keys", "API keys (talks to Redis directly)")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = add_command(key_commands, "create", "create a key for a user; prints it once")
    create.add_argument("--user", required=True, help="the user's name")
    create.add_argument("--admin", action="store_true", help="sees and acts on every user's")
    add_command(key_commands, "list", "every key's id, user and role (never the key)")
    add_command(key_commands, "revoke", "revoke a key by its id").add_argument(
        "key_id", help="as `keys list` shows it"
    )
    _models_parsers(commands)
    _runs_parsers(commands)
    _studies_parsers(commands)
    demo_cmd = add_command(commands, "demo", "start everything, train, sample (make run)")
    demo_cmd.add_argument(
        "--size", choices=CHAR_LSTM_SIZES, default="small", help="the char_lstm to train"
    )
    demo_cmd.add_argument("--max-steps", type=int, default=300, help="optimizer steps")


def _runs_parsers(commands: Commands) -> None:
    runs = add_command(
        commands, "runs", "your finished runs: metrics, checkpoints, compare", api=True
    )
    run_commands = runs.add_subparsers(dest="runs_command", required=True, metavar="ACTION")
    listing = add_command(run_commands, "list", "runs, sorted and filtered by a metric", api=True)
    listing.add_argument(
        "--sort", choices=get_args(RunMetric), default="created_at", help="order by"
    )
    listing.add_argument(
        "--order",
        choices=("asc", "desc"),
        default=None,
        help="default: desc for created_at, asc for the others",
    )
    listing.add_argument("--family", choices=MODEL_FAMILIES, default=None, help="only this family")
    listing.add_argument(
        "--metric", choices=get_args(FilterMetric), default=None, help="keep it in [min, max]"
    )
    listing.add_argument("--min", type=float, default=None, help="with --metric: lowest kept")
    listing.add_argument("--max", type=float, default=None, help="with --metric: highest kept")
    listing.add_argument("--limit", type=int, default=100, help="runs at most")
    metrics = add_command(run_commands, "metrics", "a run's step-by-step metrics", api=True)
    metrics.add_argument("run_id", help="the run")
    metrics.add_argument("--offset", type=int, default=0, help="points to skip")
    metrics.add_argument("--limit", type=int, default=1000, help="points per page")
    metrics.add_argument("--points", type=int, default=None, help="down-sample to N points")
    add_command(run_commands, "checkpoints", "a run's kept checkpoints", api=True).add_argument(
        "run_id", help="the run"
    )
    add_command(run_commands, "compare", "runs side by side", api=True).add_argument(
        "run_ids", nargs="+", help="2 to 10 runs"
    )


def _models_parsers(commands: Commands) -> None:
    models = add_command(commands, "models", "your model registry: versions and aliases", api=True)
    model_commands = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    create = add_command(model_commands, "create", "create a model name", api=True)
    create.add_argument("name", help="lowercase letters, digits and _.- (64 at most)")
    create.add_argument("--description", default="", help="what it is for")
    add_command(model_commands, "list", "your models with their aliases", api=True)
    add_command(model_commands, "show", "one model", api=True).add_argument(
        "name", help="the model"
    )
    register = add_command(
        model_commands, "register", "add a version from a finished run", api=True
    )
    register.add_argument("name", help="the model")
    register.add_argument("--run", required=True, help="the run id")
    register.add_argument("--step", type=int, default=None, help="a checkpoint's step")
    versions = add_command(model_commands, "versions", "a model's versions, oldest first", api=True)
    versions.add_argument("name", help="the model")
    versions.add_argument("--after", type=int, default=0, help="versions after this number")
    versions.add_argument("--limit", type=int, default=50, help="versions per page")
    promote = add_command(model_commands, "promote", "point an alias at a version", api=True)
    promote.add_argument("name", help="the model")
    promote.add_argument("version", type=int, help="the version's number")
    promote.add_argument("--alias", required=True, help="e.g. production")
    promote.add_argument(
        "--force", action="store_true", help="even if its val_loss is worse than the holder's"
    )
    rollback = add_command(model_commands, "rollback", "move an alias back one promotion", api=True)
    rollback.add_argument("name", help="the model")
    rollback.add_argument("--alias", required=True, help="e.g. production")
    compare = add_command(model_commands, "compare", "config differences and metrics", api=True)
    compare.add_argument("name", help="the model")
    compare.add_argument("versions", type=int, nargs="+", help="2 to 10 version numbers")


def _studies_parsers(commands: Commands) -> None:
    studies = add_command(
        commands, "studies", "hyperparameter studies (Optuna); trials are jobs", api=True
    )
    study_commands = studies.add_subparsers(dest="studies_command", required=True, metavar="ACTION")
    create = add_command(
        study_commands, "create", "start a study from a JSON request file", api=True
    )
    create.add_argument("spec", help="the POST /v1/studies body as a JSON file, or - for stdin")
    show = add_command(study_commands, "show", "a study: status, counts, best trial", api=True)
    show.add_argument("study_id", help="the study")
    for command in (create, show):
        command.add_argument("--wait", action="store_true", help="print progress until it ends")
        command.add_argument("--poll", type=float, default=2.0, help="seconds between polls")
    add_command(study_commands, "list", "your studies, newest first", api=True)
    add_command(study_commands, "trials", "a study's trials", api=True).add_argument(
        "study_id", help="the study"
    )
    add_command(study_commands, "cancel", "cancel a study and its trials", api=True).add_argument(
        "study_id", help="the study"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="model-trainer", description=__doc__, formatter_class=HelpFormatter
    )
    add_connection_options(parser, main=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _local_parsers(commands)
    _service_parsers(commands)
    add_schedule_parsers(commands)
    return parser


Handler = Callable[[argparse.Namespace, Settings], object]
HANDLERS: dict[str, Handler] = {
    "local-train": local_train,
    "local-generate": local_generate,
    "api": api,
    "worker": worker,
    "upload": upload,
    "submit": submit,
    "export": export,
    "follow": follow,
    "job": job,
    "jobs": jobs,
    "cancel": cancel,
    "logs": logs,
    "demo": demo,
    "keys create": keys_create,
    "keys list": keys_list,
    "keys revoke": keys_revoke,
    "runs list": runs_list,
    "runs metrics": runs_metrics,
    "runs checkpoints": runs_checkpoints,
    "runs compare": runs_compare,
    "models create": models_create,
    "models list": models_list,
    "models show": models_show,
    "models register": models_register,
    "models versions": models_versions,
    "models promote": models_promote,
    "models rollback": models_rollback,
    "models compare": models_compare,
    "studies create": studies_create,
    "studies list": studies_list,
    "studies show": studies_show,
    "studies trials": studies_trials,
    "studies cancel": studies_cancel,
}
# Commands with subcommands, and the attribute naming the chosen one.
_GROUPS = {
    "keys": "keys_command",
    "models": "models_command",
    "runs": "runs_command",
    "studies": "studies_command",
}
# Schedules (cli_schedules.py).
HANDLERS.update(SCHEDULE_HANDLERS)
_GROUPS["schedules"] = "schedules_command"


def redis_unreachable(error: Exception) -> str:
    return (
        f"cannot reach Redis ({error}): start a redis-server there or set REDIS_URL to a "
        "running one; `make run` without REDIS_URL starts its own"
    )


def explain(error: Exception, args: argparse.Namespace) -> str:
    """One line: what failed and, when something is missing, how to get it."""
    if isinstance(error, RedisConnectionError | RedisTimeoutError):
        return redis_unreachable(error)
    if isinstance(error, httpx.TransportError | httpx.InvalidURL):
        return (
            f"cannot reach the API at {args.url} ({error}): start it (`model-trainer api`, or "
            f"`make run`), or point --url / {URL_ENV} at one"
        )
    if isinstance(error, ApiError) and error.code == "REDIS_UNAVAILABLE":
        return f"{error} (the API at {args.url} cannot reach its Redis: start it)"
    if isinstance(error, ApiError) and error.code == "UNAUTHENTICATED":
        return f"{error} (pass --api-key or set {API_KEY_ENV}; `model-trainer keys create`)"
    return " ".join(str(error).split())


# Everything a command can fail with that is not a bug: said in one line, exit status 2.
EXPECTED_FAILURES = (
    ModelTrainerError,
    ApiError,
    StreamEnded,
    PayloadError,
    BundleMismatch,
    httpx.TransportError,
    httpx.InvalidURL,
    RedisConnectionError,
    RedisTimeoutError,
    RedisServerNotFound,
    TimeoutError,
    OSError,
)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        group = _GROUPS.get(args.command)
        command = args.command if group is None else f"{args.command} {getattr(args, group)}"
        code = HANDLERS[command](args, settings)
    except EXPECTED_FAILURES as error:
        print(f"error: {explain(error, args)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
