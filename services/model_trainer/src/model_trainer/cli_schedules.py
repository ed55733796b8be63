"""`model-trainer scheduler` (the process that fires schedules) and `model-trainer schedules
create|list|show|pause|resume|delete` (through the API, like `submit`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import orjson

from model_trainer.cli_args import Commands, add_command
from model_trainer.client import TrainerClient
from model_trainer.contracts.jobs import JOB_TYPES
from model_trainer.errors import ModelTrainerError
from model_trainer.scheduler.service import run_scheduler
from model_trainer.settings import Settings
from platform_core.json_types import JSONObject, JSONValue, PayloadError, load_json_object


def request_fields(items: list[str]) -> dict[str, JSONValue]:
    """`key=value` items as `submit` reads them: a value that parses as JSON is JSON, else a
    string."""
    body: dict[str, JSONValue] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ModelTrainerError("INVALID_CONFIG", f"expected key=value, got {item!r}")
        try:
            body[key] = load_json_object(f'{{"v": {raw}}}')["v"]
        except PayloadError:
            body[key] = raw
    return body


def _client(args: argparse.Namespace) -> TrainerClient:
    return TrainerClient(args.url, api_key=args.api_key)


def _printed(body: JSONObject) -> int:
    print(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
    return 0


def scheduler(args: argparse.Namespace, settings: Settings) -> int:
    return run_scheduler(settings)


def schedules_create(args: argparse.Namespace, settings: Settings) -> int:
    request = request_fields(args.fields)
    if args.model is not None:
        request["model"] = args.model
    return _printed(
        _client(args).create_schedule(
            args.job_type, request, cron=args.cron, interval_s=args.every, name=args.name
        )
    )


def schedules_list(args: argparse.Namespace, settings: Settings) -> int:
    return _printed(_client(args).schedules())


def schedules_show(args: argparse.Namespace, settings: Settings) -> int:
    return _printed(_client(args).schedule(args.schedule_id))


def schedules_pause(args: argparse.Namespace, settings: Settings) -> int:
    return _printed(_client(args).pause_schedule(args.schedule_id))


def schedules_resume(args: argparse.Namespace, settings: Settings) -> int:
    return _printed(_client(args).resume_schedule(args.schedule_id))


def schedules_delete(args: argparse.Namespace, settings: Settings) -> int:
    return _printed(_client(args).delete_schedule(args.schedule_id))


SCHEDULE_HANDLERS: dict[str, Callable[[argparse.Namespace, Settings], object]] = {
    "scheduler": scheduler,
    "schedules create": schedules_create,
    "schedules list": schedules_list,
    "schedules show": schedules_show,
    "schedules pause": schedules_pause,
    "schedules resume": schedules_resume,
    "schedules delete": schedules_delete,
}


def add_schedule_parsers(commands: Commands) -> None:
    add_command(commands, "scheduler", "fire schedules (RQ's cron scheduler; talks to Redis)")
    schedules = add_command(
        commands, "schedules", "your recurring jobs: cron or interval", api=True
    )
    actions = schedules.add_subparsers(dest="schedules_command", required=True, metavar="ACTION")
    create = add_command(
        actions,
        "create",
        "submit a job on a schedule: create train key=value ... --every 3600",
        api=True,
    )
    create.add_argument("job_type", choices=JOB_TYPES, help="what kind of job each firing submits")
    create.add_argument("fields", nargs="*", help="the job request's fields as key=value")
    when = create.add_mutually_exclusive_group(required=True)
    when.add_argument(
        "--cron", help="'minute hour day-of-month month day-of-week', in the scheduler's time zone"
    )
    when.add_argument("--every", type=int, help="seconds between firings")
    create.add_argument("--name", default=None, help="a name to recognise it by")
    create.add_argument(
        "--model", default=None, help="eval/score/generate/export: name@alias or name/version"
    )
    add_command(actions, "list", "your schedules", api=True)
    for action, text in (
        ("show", "a schedule and its newest firings"),
        ("pause", "stop firing until resumed"),
        ("resume", "fire again (a missed slot fires once at once)"),
        ("delete", "no more firings; its jobs stay"),
    ):
        add_command(actions, action, text, api=True).add_argument(
            "schedule_id", help="as `schedules list` shows it"
        )
