"""Hyperparameter studies end to end (real Redis, API and worker processes): trials are ordinary
train jobs linked to their study, a hopeless trial is pruned, the best trial is reported, and a
study goes on through an API restart and a worker killed mid-trial, counting no trial twice."""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import orjson
import pytest
from optuna.trial import TrialState as OptunaState
from tests.conftest import SAMPLE_TEXT
from tests.support.processes import cli_process, kill_tree, start_api, stop, wait_for

from model_trainer import cli
from model_trainer.client import TrainerClient
from model_trainer.settings import Settings
from model_trainer.storage.studies import StudyStore
from model_trainer.studies.optuna_study import open_study
from platform_core.json_types import JSONObject, JSONValue, load_json_object
from platform_workers.redis_conn import redis_from_url

LR: dict[str, JSONValue] = {
    "name": "learning_rate",
    "type": "float",
    "low": 1e-3,
    "high": 1e-2,
    "log": True,
}


def _base(client: TrainerClient) -> dict[str, JSONValue]:
    corpus = client.upload_corpus(SAMPLE_TEXT.encode())
    return {
        "model_family": "char_lstm",
        "model_size": "tiny",
        "corpus_id": corpus["corpus_id"],
        "max_seq_len": 32,
        "batch_size": 8,
        "max_steps": 40,
        "eval_every_steps": 10,
        "eval_max_batches": 4,
        "val_fraction": 0.2,
        "device": "cpu",
    }


def _ended(client: TrainerClient, study_id: str, timeout: float) -> JSONObject:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        study = client.study(study_id)
        if study["status"] != "running":
            return study
        time.sleep(0.5)
    raise AssertionError(f"study {study_id} still running: {client.study(study_id)}")


def _trials(client: TrainerClient, study_id: str) -> list[JSONObject]:
    trials = client.study_trials(study_id)["trials"]
    assert isinstance(trials, list)
    return [trial for trial in trials if isinstance(trial, dict)]


def _lr(trial: JSONObject) -> JSONValue:
    params = trial["params"]
    assert isinstance(params, dict)
    return params["learning_rate"]


def _cli_json(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> JSONObject:
    """Runs the CLI; its output's JSON document (after any progress lines)."""
    capsys.readouterr()
    assert cli.main(["--url", url, *args]) == 0
    out = capsys.readouterr().out
    return load_json_object(out[out.index("{") :])


def test_a_grid_study_prunes_the_hopeless_trial_and_reports_the_best(
    url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Created and followed with the CLI: `studies create --wait` prints progress lines while
    the study runs, then the ended study; a study read from stdin is cancelled at once."""
    client = TrainerClient(url)
    request = tmp_path / "study.json"
    request.write_bytes(
        orjson.dumps(
            {
                "base": _base(client),
                "search_space": [
                    {"name": "learning_rate", "type": "categorical", "choices": [1e-2, 1e-9]}
                ],
                "sampler": "grid",
                "n_trials": 2,
                "pruner": "median",
                "pruner_startup_trials": 1,
                "seed": 1,
            }
        )
    )
    capsys.readouterr()
    assert (
        cli.main(["--url", url, "studies", "create", str(request), "--wait", "--poll", "0.5"]) == 0
    )
    out = capsys.readouterr().out
    assert f"{out.split()[0]} running: " in out.splitlines()[0]
    ended = load_json_object(out[out.index("{") :])
    study_id = str(ended["study_id"])
    assert (ended["status"], ended["ended_by"]) == ("completed", "n_trials")
    assert _cli_json(capsys, url, "studies", "show", study_id) == ended
    assert _cli_json(capsys, url, "studies", "show", study_id, "--wait")["status"] == "completed"
    assert _cli_json(capsys, url, "studies", "list")["studies"] == [ended]
    assert _cli_json(capsys, url, "studies", "trials", study_id) == client.study_trials(study_id)
    assert cli.main(["--url", url, "studies", "cancel", study_id]) == 2
    assert "STUDY_ENDED" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", io.StringIO(request.read_text()))
    created = _cli_json(capsys, url, "studies", "create", "-")
    assert created["status"] == "running"
    cancelled = _cli_json(capsys, url, "studies", "cancel", str(created["study_id"]))
    assert (cancelled["status"], cancelled["ended_by"]) == ("cancelled", "cancelled")
    trials = _trials(client, study_id)
    assert [trial["number"] for trial in trials] == [0, 1]
    states = {_lr(trial): trial["state"] for trial in trials}
    assert states == {1e-2: "complete", 1e-9: "pruned"}
    best = ended["best_trial"]
    assert isinstance(best, dict)
    assert best["params"] == {"learning_rate": 1e-2}
    for trial in trials:
        job = client.job(str(trial["job_id"]))
        assert job["type"] == "train"
        assert job["status"] == "completed"
        assert job["origin"] == {"kind": "study", "id": study_id, "trial": trial["number"]}
        assert job["run_id"] == trial["run_id"]


def test_a_study_goes_on_through_an_api_restart_and_a_killed_worker(
    service_env: dict[str, str], settings: Settings, redis_url: str
) -> None:
    """Two trials at a time (the second waits in the queue: one worker); the worker is
    SIGKILLed mid-trial and the API restarted: a new worker resumes the interrupted trial and
    finishes the study, with each of its four trials run and counted once."""
    api, url = start_api(service_env)
    client = TrainerClient(url)
    first_worker = cli_process(["worker", "--queues", "train"], service_env)
    base = {**_base(client), "max_steps": 400, "checkpoint_every_steps": 20, "model_size": "small"}
    study = client.create_study(
        {
            "base": base,
            "search_space": [LR],
            "n_trials": 4,
            "parallelism": 2,
            "sampler": "random",
        }
    )
    study_id = str(study["study_id"])

    def a_trial_well_into_training() -> bool:
        jobs = [client.job(str(t["job_id"])) for t in _trials(client, study_id)]
        return len(jobs) == 2 and any(float(str(j["progress"])) > 0.2 for j in jobs)

    wait_for(a_trial_well_into_training, timeout=90, what="a trial well into training")
    kill_tree(first_worker)
    stop(api)
    client.close()
    api, url = start_api(service_env)
    client = TrainerClient(url)
    second_worker = cli_process(["worker", "--queues", "train"], service_env)
    try:
        ended = _ended(client, study_id, timeout=240)
        trials = _trials(client, study_id)
        jobs = [client.job(str(t["job_id"])) for t in trials]
    finally:
        stop(second_worker)
        stop(api)
    assert (ended["status"], ended["ended_by"]) == ("completed", "n_trials")
    assert [t["number"] for t in trials] == [0, 1, 2, 3]
    assert [t["state"] for t in trials] == ["complete"] * 4
    assert len({str(job["job_id"]) for job in jobs}) == 4
    assert 2 in [job["attempts"] for job in jobs[:2]], jobs  # the killed trial ran again
    record = StudyStore(redis_from_url(redis_url)).get(study_id)
    assert record is not None
    optuna_trials = open_study({**settings, "redis_url": redis_url}, record).get_trials()
    assert [t.state for t in optuna_trials] == [OptunaState.COMPLETE] * 4
