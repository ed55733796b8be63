"""The CLI against a fake API: help on every option, --url and the key anywhere on the line,
one-line refusals, `job`, `jobs` as a table, and results printed after `--follow`."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from tests.unit.model_trainer.test_cli_without_redis import NEEDS_API

from model_trainer import cli, cli_schedules
from model_trainer.cli_args import HelpFormatter
from model_trainer.client import TrainerClient
from platform_core.job_events import (
    encode_job_event,
    make_completed_event,
    make_failed_event,
    make_started_event,
)
from platform_core.json_types import JSONObject

URL = "http://api.test:8123"
JOB = "6f1c0a1e4b2d4c8e9a7b5d3f1e2c4a6b"
RECORD: JSONObject = {
    "job_id": JOB,
    "user_id": 1,
    "type": "generate",
    "queue": "infer",
    "status": "completed",
    "progress": 1.0,
    "message": "token 20/20",
    "attempts": 1,
    "created_at": "2026-12-05T10:00:00.000+00:00",
    "started_at": "2026-12-05T10:00:01.000+00:00",
    "finished_at": "2026-12-05T10:00:02.000+00:00",
    "heartbeat_at": None,
    "run_id": "run-1",
    "result": {"outputs": ["To be, or not", "To be sure"], "new_tokens": [9, 6]},
    "error": None,
    "priority": "normal",
    "origin": None,
}
SCORES: JSONObject = {
    "loss": 1.25,
    "perplexity": 3.49,
    "num_tokens": 2,
    "per_token": [
        {"token": "T", "prob": 0.5, "surprisal": 1.0, "top_k": [{"token": "T", "prob": 0.5}]},
        {"token": "o", "prob": 0.25, "surprisal": 2.0, "top_k": []},
    ],
}
Handler = Callable[[httpx.Request], httpx.Response]


class FakeApi:
    """Answers with `handler` and keeps every request; the CLI's clients talk only to it."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    def client(self, args: argparse.Namespace) -> TrainerClient:
        """What cli._client builds, on this fake's transport."""
        return TrainerClient(
            args.url, api_key=args.api_key, transport=httpx.MockTransport(self.handle)
        )


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Callable[[Handler], FakeApi]:
    monkeypatch.delenv("MODEL_TRAINER_URL", raising=False)
    monkeypatch.delenv("MODEL_TRAINER_API_KEY", raising=False)

    def start(handler: Handler) -> FakeApi:
        api = FakeApi(handler)
        monkeypatch.setattr(cli, "_client", api.client)
        monkeypatch.setattr(cli_schedules, "_client", api.client)
        return api

    return start


def answering(body: JSONObject, status: int = 200) -> Handler:
    return lambda request: httpx.Response(status, json=body)


def parsers(
    parser: argparse.ArgumentParser, name: str = "model-trainer"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command, sub in action.choices.items():
                yield from parsers(sub, f"{name} {command}")


# ------------------------------------------------------------------ help, defaults, choices


def test_every_argument_has_help_and_every_default_is_shown() -> None:
    for name, parser in parsers(cli.build_parser()):
        assert parser.formatter_class is HelpFormatter, name
        text = parser.format_help()
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            assert action.help, f"{name} {action.dest}"
            default = action.default
            if action.option_strings and default not in (None, False, argparse.SUPPRESS):
                assert f"(default: {default})" in " ".join(text.split()), f"{name} {action.dest}"


@pytest.mark.parametrize(
    ("argv", "dest", "choices"),
    [
        (["jobs"], "status", ("queued", "running", "completed", "failed", "cancelled")),
        (["jobs"], "type", ("train", "eval", "score", "generate", "tokenizer", "export")),
        (["local-train"], "family", ("char_lstm", "gpt2")),
        (["local-train"], "size", ("tiny", "small", "medium", "nano")),
        (["local-train"], "device", ("auto", "cpu", "cuda", "mps")),
        (
            ["runs", "list"],
            "sort",
            ("loss", "val_loss", "best_val_loss", "steps", "elapsed_s", "num_params", "created_at"),
        ),
        (["demo"], "size", ("tiny", "small", "medium")),
    ],
)
def test_options_with_a_fixed_set_of_values_offer_them(
    argv: list[str], dest: str, choices: tuple[str, ...]
) -> None:
    by_name = dict(parsers(cli.build_parser()))
    parser = by_name[" ".join(["model-trainer", *argv])]
    action = next(action for action in parser._actions if action.dest == dest)
    assert tuple(action.choices or ()) == choices


def test_a_value_outside_the_choices_is_refused_with_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["jobs", "--status", "done"])
    assert info.value.code == 2
    assert "invalid choice: 'done' (choose from 'queued', 'running'" in capsys.readouterr().err


# ------------------------------------------------------------------ --url and the key


@pytest.mark.parametrize(
    "argv",
    [
        ["--url", URL, "--api-key", "k1", "jobs"],
        ["jobs", "--url", URL, "--api-key", "k1"],
        ["--url", URL, "jobs", "--api-key", "k1"],
        ["models", "--url", URL, "--api-key", "k1", "list"],
        ["models", "list", "--url", URL, "--api-key", "k1"],
        ["schedules", "list", "--url", URL, "--api-key", "k1"],
        ["--api-key", "k0", "--url", "http://other", "jobs", "--url", URL, "--api-key", "k1"],
    ],
)
def test_url_and_key_are_taken_before_or_after_the_subcommand(
    serve: Callable[[Handler], FakeApi], argv: list[str]
) -> None:
    api = serve(answering({"jobs": [], "next_cursor": None, "models": [], "schedules": []}))
    assert cli.main(argv) == 0
    (request,) = api.requests
    assert str(request.url).startswith(f"{URL}/v1/")
    assert request.headers["authorization"] == "Bearer k1"


def test_url_and_key_come_from_the_environment_otherwise(
    serve: Callable[[Handler], FakeApi], monkeypatch: pytest.MonkeyPatch
) -> None:
    api = serve(answering({"jobs": [], "next_cursor": None}))
    monkeypatch.setenv("MODEL_TRAINER_URL", URL)
    monkeypatch.setenv("MODEL_TRAINER_API_KEY", "from-env")
    assert cli.main(["jobs"]) == 0
    assert str(api.requests[0].url).startswith(URL)
    assert api.requests[0].headers["authorization"] == "Bearer from-env"


def test_a_flag_given_before_the_subcommand_is_kept_after_it() -> None:
    args = cli.build_parser().parse_args(["--url", URL, "runs", "list"])
    assert (args.url, args.api_key) == (URL, None)


# ------------------------------------------------------------------ one-line refusals

REFUSAL: JSONObject = {
    "error": {"code": "JOB_NOT_FOUND", "message": "job 'x'\ndoes not exist", "details": {}}
}


@pytest.mark.parametrize("command", sorted(NEEDS_API))
def test_every_api_command_says_a_refusal_in_one_line_with_its_code(
    serve: Callable[[Handler], FakeApi], capsys: pytest.CaptureFixture[str], command: str
) -> None:
    serve(answering(REFUSAL, status=404))
    assert cli.main(NEEDS_API[command]) == 2
    captured = capsys.readouterr()
    assert captured.err == "error: HTTP 404 JOB_NOT_FOUND: job 'x' does not exist\n"


def test_a_page_that_is_not_ours_is_one_line_too(
    serve: Callable[[Handler], FakeApi], capsys: pytest.CaptureFixture[str]
) -> None:
    serve(lambda request: httpx.Response(502, text="<html>\n<h1>Bad Gateway</h1>\n</html>"))
    assert cli.main(["jobs"]) == 2
    assert capsys.readouterr().err == "error: HTTP 502: <html> <h1>Bad Gateway</h1> </html>\n"


def test_a_refused_key_says_how_to_send_one(
    serve: Callable[[Handler], FakeApi], capsys: pytest.CaptureFixture[str]
) -> None:
    refusal: JSONObject = {"error": {"code": "UNAUTHENTICATED", "message": "no key", "details": {}}}
    serve(answering(refusal, status=401))
    assert cli.main(["jobs"]) == 2
    assert capsys.readouterr().err == (
        "error: HTTP 401 UNAUTHENTICATED: no key (pass --api-key or set MODEL_TRAINER_API_KEY;"
        " `model-trainer keys create`)\n"
    )


def test_a_malformed_url_and_a_missing_file_are_one_line(
    serve: Callable[[Handler], FakeApi], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert cli.main(["upload", str(tmp_path / "nope.txt")]) == 2
    assert capsys.readouterr().err == (
        f"error: [Errno 2] No such file or directory: '{tmp_path / 'nope.txt'}'\n"
    )
    assert cli.main(["--url", "http://[::1", "jobs"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach the API at http://[::1 (")
    assert err.count("\n") == 1


def test_ctrl_c_ends_quietly_with_status_130(
    serve: Callable[[Handler], FakeApi], capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(request: httpx.Request) -> httpx.Response:
        raise KeyboardInterrupt

    serve(interrupted)
    assert cli.main(["follow", JOB]) == cli.INTERRUPTED
    assert capsys.readouterr().err == "interrupted\n"


# ------------------------------------------------------------------ job, jobs


def test_jobs_is_a_table_with_the_next_page_named(
    serve: Callable[[Handler], FakeApi], capsys: pytest.CaptureFixture[str]
) -> None:
    failed: JSONObject = {
        **RECORD,
        "job_id": "j2",
        "type": "train",
        "status": "failed",
        "progress": 0.25,
        "run_id": None,
        "error": {"code": "TRAINING_NAN_LOSS", "kind": "user", "message": "loss is nan"},
    }
    api = serve(answering({"jobs": [RECORD, failed], "next_cursor": "c2"}))
    assert cli.main(["jobs", "--status", "completed", "--type", "generate", "--cursor", "c1"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "JOB ID                            TYPE      STATUS     PROGRESS  CREATED              "
        "RUN / ERROR",
        f"{JOB}  generate  completed  100%      2026-12-05 10:00:00  run-1",
        "j2                                train     failed     25%       2026-12-05 10:00:00  "
        "TRAINING_NAN_LOSS: loss is nan",
        "more: model-trainer jobs --cursor c2",
    ]
    params = dict(api.requests[0].url.params)
    assert params == {"limit": "20", "status": "completed", "type": "generate", "cursor": "c1"}


def test_jobs_json_prints_the_answer_and_an_empty_list_says_so(
    serve: Callable[[Handler], FakeApi], capsys: pytest.CaptureFixture[str]
) -> None:
    serve(answering({"jobs": [], "next_cursor": None}))
    assert cli.main(["jobs"]) == 0
    assert capsys.readouterr().out == "no jobs\n"
    assert cli.main(["jobs", "--json"]) == 0
    assert orjson.loads(capsys.readouterr().out) == {"jobs": [], "next_cursor": None}


def test_job_prints_its_status_then_its_result_as_text(
    serve: Callable[[Handler], FakeApi], capsys: pytest.CaptureFixture[str]
) -> None:
    serve(answering(RECORD))
    assert cli.main(["job", JOB]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"job {JOB}: generate completed 100% (queue infer, attempts 1)",
        "created 2026-12-05 10:00:00  started 2026-12-05 10:00:01  finished 2026-12-05 10:00:02",
        "last: token 20/20",
        "run run-1",
        "result:",
        "--- sample 1 ---",
        "To be, or not",
        "--- sample 2 ---",
        "To be sure",
    ]
    assert cli.main(["job", JOB, "--json"]) == 0
    assert orjson.loads(capsys.readouterr().out) == RECORD


def test_job_shows_scores_a_failure_and_other_results_as_json(
    serve: Callable[[Handler], FakeApi], capsys: pytest.CaptureFixture[str]
) -> None:
    scored: JSONObject = {**RECORD, "type": "score", "result": SCORES}
    serve(answering(scored))
    assert cli.main(["job", JOB]) == 0
    assert capsys.readouterr().out.splitlines()[-3:] == [
        "loss 1.2500 nats/token, perplexity 3.490 over 2 tokens",
        "     'T'  p 0.500    1.00 bits  top: 'T' 0.500",
        "     'o'  p 0.250    2.00 bits  top: ",
    ]
    failed: JSONObject = {
        **RECORD,
        "type": "train",
        "status": "failed",
        "message": "",
        "run_id": None,
        "started_at": None,
        "result": None,
        "error": {"code": "WORKER_LOST", "kind": "system", "message": "its worker died"},
    }
    serve(answering(failed))
    assert cli.main(["job", JOB]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"job {JOB}: train failed 100% (queue infer, attempts 1)",
        "created 2026-12-05 10:00:00  started -  finished 2026-12-05 10:00:02",
        "error: WORKER_LOST (system): its worker died",
    ]
    tokenizer: JSONObject = {**RECORD, "type": "tokenizer", "result": {"tokenizer_id": "t1"}}
    serve(answering(tokenizer))
    assert cli.main(["job", JOB]) == 0
    assert capsys.readouterr().out.endswith('result:\n{\n  "tokenizer_id": "t1"\n}\n')


@pytest.mark.parametrize(
    ("job_type", "result", "said"),
    [
        ("generate", {"outputs": "To be"}, "field 'outputs' must be a list of strings"),
        ("score", {**SCORES, "per_token": [1]}, "field 'per_token' must be a list of objects"),
    ],
)
def test_a_malformed_result_is_one_line_naming_the_field(
    serve: Callable[[Handler], FakeApi],
    capsys: pytest.CaptureFixture[str],
    job_type: str,
    result: JSONObject,
    said: str,
) -> None:
    serve(answering({**RECORD, "type": job_type, "result": result}))
    assert cli.main(["job", JOB]) == 2
    assert capsys.readouterr().err == f"error: {said}\n"


# ------------------------------------------------------------------ follow


def finished_stream(job_type: str, result: JSONObject, *, failed: bool = False) -> Handler:
    """A job that already ended: its events, then its record."""
    end = (
        (
            "failed",
            make_failed_event(job_id=JOB, user_id=1, error_kind="user", code="X", message="no"),
        )
        if failed
        else (
            "completed",
            make_completed_event(job_id=JOB, user_id=1, result_id=JOB, result_bytes=9),
        )
    )
    events = [
        ("started", encode_job_event(make_started_event(job_id=JOB, user_id=1, queue="infer"))),
        (end[0], encode_job_event(end[1])),
    ]
    body = "".join(
        f"id: {n}-0\nevent: trainer.job.{name}.v1\ndata: {data}\n\n"
        for n, (name, data) in enumerate(events, 1)
    )
    record: JSONObject = {**RECORD, "type": job_type, "result": result}

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return httpx.Response(200, text=body)
        if request.method == "POST":
            return httpx.Response(202, json={"job_id": JOB, "type": job_type, "status": "queued"})
        return httpx.Response(200, json=record)

    return handle


def test_submit_generate_follow_prints_the_samples_at_the_end(
    serve: Callable[[Handler], FakeApi], capsys: pytest.CaptureFixture[str]
) -> None:
    serve(finished_stream("generate", {"outputs": ["To be, or not"]}))
    assert cli.main(["submit", "generate", "run_id=r1", "prompt_text=To", "--follow"]) == 0
    out = capsys.readouterr().out
    assert out.endswith("started\ncompleted in 0:00:00\n--- sample 1 ---\nTo be, or not\n")


def test_follow_prints_scores_at_the_end_and_nothing_more_for_a_training(
    serve: Callable[[Handler], FakeApi], capsys: pytest.CaptureFixture[str]
) -> None:
    serve(finished_stream("score", SCORES))
    assert cli.main(["follow", JOB]) == 0
    assert "loss 1.2500 nats/token, perplexity 3.490 over 2 tokens\n" in capsys.readouterr().out
    serve(finished_stream("train", {"loss": 1.0}))
    assert cli.main(["follow", JOB]) == 0
    assert capsys.readouterr().out == "started\ncompleted in 0:00:00\n"


def test_a_job_that_fails_while_followed_exits_1_with_no_result(
    serve: Callable[[Handler], FakeApi], capsys: pytest.CaptureFixture[str]
) -> None:
    api = serve(finished_stream("generate", {"outputs": ["x"]}, failed=True))
    argv = ["submit", "generate", "prompt_text=To", "--model", "m@prod", "--follow"]
    assert cli.main(argv) == 1
    assert capsys.readouterr().out.endswith("started\nfailed: X (user): no\n")
    assert orjson.loads(api.requests[0].content) == {"prompt_text": "To", "model": "m@prod"}
