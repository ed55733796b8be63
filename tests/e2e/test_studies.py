"""Hyperparameter studies end to end (real Redis, API and worker processes): trials are ordinary
train jobs linked to their study, a hopeless trial is pruned, the best trial is reported, and a
study goes on through an API restart and a worker killed mid-trial, counting no trial twice."""

from __future__ import annotations

import time

from tests.conftest import SAMPLE_TEXT

from model_trainer.client import TrainerClient
from platform_core.json_types import JSONObject, JSONValue


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


def test_a_grid_study_prunes_the_hopeless_trial_and_reports_the_best(url: str) -> None:
    client = TrainerClient(url)
    study = client.create_study(
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
    assert study["status"] == "running"
    study_id = str(study["study_id"])
    ended = _ended(client, study_id, timeout=120)
    assert (ended["status"], ended["ended_by"]) == ("completed", "n_trials")
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
