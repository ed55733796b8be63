"""Run directories, library versions, git commit and the manifest file."""

import platform
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from model_trainer.contracts.train_config import TRAIN_DEFAULTS, make_train_config
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.runs import (
    MANIFEST_FILE,
    RunManifest,
    git_commit,
    library_versions,
    run_dir,
    utc_now,
    write_manifest,
)


@pytest.mark.parametrize("run_id", ["t1", "A", "run-2026.11_03", "0" + "a" * 127])
def test_run_dir_is_under_artifacts_runs(settings: Settings, run_id: str) -> None:
    assert run_dir(settings, run_id) == settings["artifacts_root"] / "runs" / run_id


@pytest.mark.parametrize(
    "run_id",
    ["", "../x", "a/b", "..", ".hidden", "-flag", "_x", "a b", "a\\b", "a\n", "é", "a" * 129],
)
def test_run_dir_rejects_ids_that_could_name_another_path(settings: Settings, run_id: str) -> None:
    with pytest.raises(ModelTrainerError) as info:
        run_dir(settings, run_id)
    assert info.value.code == "INVALID_CONFIG"
    assert info.value.http_status == 422
    assert info.value.details == {"field": "run_id"}
    assert info.value.message.startswith("run_id must match ")


def test_utc_now_is_iso_utc_with_milliseconds() -> None:
    before = datetime.now(UTC)
    stamp = utc_now()
    after = datetime.now(UTC)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", stamp)
    parsed = datetime.fromisoformat(stamp)
    assert parsed.utcoffset() == timedelta(0)
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= parsed <= after


def test_library_versions_include_python_and_the_numeric_libraries() -> None:
    import numpy
    import torch

    found = library_versions()
    assert found["python"] == platform.python_version()
    assert found["torch"] == torch.__version__
    assert found["numpy"] == numpy.__version__
    assert {"safetensors", "orjson"} <= set(found)


def test_library_versions_leave_out_missing_packages() -> None:
    import torch

    found = library_versions(("torch", "no-such-package-model-trainer-test"))
    assert found == {"python": platform.python_version(), "torch": torch.__version__}


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_git_commit_of_a_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "a.txt").write_text("a", encoding="utf-8")
    _git(repo, "add", "a.txt")
    _git(repo, "commit", "-q", "-m", "first")
    head = _git(repo, "rev-parse", "HEAD")
    commit = git_commit(repo)
    assert commit == head
    assert re.fullmatch(r"[0-9a-f]{40}", head)


def test_git_commit_outside_a_repository_is_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    plain = tmp_path / "plain"
    plain.mkdir()
    assert git_commit(plain) is None


def test_git_commit_of_a_repository_without_commits_is_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    repo = tmp_path / "fresh"
    repo.mkdir()
    _git(repo, "init", "-q")
    assert git_commit(repo) is None


def test_write_manifest_round_trips(settings: Settings) -> None:
    directory = run_dir(settings, "r1")
    directory.mkdir(parents=True)
    manifest: RunManifest = {
        "run_id": "r1",
        "model_family": "char_lstm",
        "model_size": "tiny",
        "config": make_train_config(
            model_family="char_lstm",
            model_size="tiny",
            corpus_path="/data/c.txt",
            options={**TRAIN_DEFAULTS, "max_steps": 4},
        ),
        "metrics": {
            "loss": 2.5,
            "perplexity": 12.182493960703473,
            "val_loss": None,
            "val_perplexity": None,
            "steps": 4,
            "epochs_completed": 1,
            "tokens_seen": 256,
            "tokens_per_second": 1000.5,
            "elapsed_s": 0.25,
            "resumed_from_step": None,
            "out_dir": str(directory),
            "stop_reason": "completed",
            "best_val_loss": None,
            "best_step": None,
        },
        "corpus_sha256": "ab" * 32,
        "corpus_bytes": 9000,
        "tokenizer_id": "char-abababababab",
        "num_params": 12345,
        "device": "cpu",
        "library_versions": {"python": "3.11.7", "torch": "2.13.0"},
        "git_commit": None,
        "created_at": "2026-11-01T00:00:00.000+00:00",
        "completed_at": "2026-11-01T00:00:01.000+00:00",
    }
    path = write_manifest(directory, manifest)
    assert path == directory / MANIFEST_FILE
    assert path.name == "manifest.json"
    assert orjson.loads(path.read_bytes()) == manifest
    assert path.read_text(encoding="utf-8").startswith('{\n  "run_id": "r1"')
