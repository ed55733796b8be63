"""Runs: the finished models, listed newest first and read back as their manifests."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from fastapi.testclient import TestClient

from model_trainer.settings import Settings
from model_trainer.storage.owners import Owned
from model_trainer.storage.runs import RunManifest, run_dir


def test_no_runs_yet(client: TestClient) -> None:
    assert client.get("/v1/runs").json() == {"runs": []}


def test_runs_are_listed_newest_first_as_summaries(
    client: TestClient, settings: Settings, save_run: Callable[[str, str], RunManifest]
) -> None:
    save_run("old", "2026-01-01T00:00:00+00:00")
    newest = save_run("new", "2026-03-01T00:00:00+00:00")
    save_run("mid", "2026-02-01T00:00:00+00:00")
    run_dir(settings, "training").mkdir()  # still training: no manifest yet
    damaged = run_dir(settings, "damaged")
    damaged.mkdir()
    (damaged / "manifest.json").write_bytes(b'{"run_id": "damaged"}')
    response = client.get("/v1/runs")
    assert response.status_code == 200
    runs = response.json()["runs"]
    assert [run["run_id"] for run in runs] == ["new", "mid", "old"]
    assert runs[0] == {
        "run_id": "new",
        "model_family": "char_lstm",
        "model_size": "tiny",
        "num_params": 1234,
        "device": "cpu",
        "corpus_sha256": newest["corpus_sha256"],
        "loss": 1.5,
        "val_loss": 1.75,
        "best_val_loss": None,
        "steps": 10,
        "elapsed_s": 1.28,
        "stop_reason": "completed",
        "created_at": "2026-03-01T00:00:00+00:00",
        "completed_at": "2026-03-01T00:00:00+00:00",
    }


def test_get_returns_the_manifest(client: TestClient, trained_run: RunManifest) -> None:
    response = client.get("/v1/runs/r1")
    assert response.status_code == 200
    assert response.json() == orjson.loads(orjson.dumps(trained_run))


def test_unknown_run_is_not_found(client: TestClient) -> None:
    response = client.get("/v1/runs/nope")
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "MODEL_NOT_FOUND",
        "message": "run nope does not exist or has not finished training",
        "details": {"field": "run_id", "run_id": "nope"},
    }


def test_a_malformed_run_id_is_invalid_config(client: TestClient) -> None:
    response = client.get("/v1/runs/.hidden")
    assert response.status_code == 422
    assert response.json()["error"]["details"] == {"field": "run_id"}


def test_an_unreadable_manifest_fails_to_load(
    client: TestClient, settings: Settings, own: Callable[[Owned, str], None]
) -> None:
    own("run", "broken")
    directory = run_dir(settings, "broken")
    directory.mkdir(parents=True)
    (directory / "manifest.json").write_bytes(b"{trunc")
    response = client.get("/v1/runs/broken")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "MODEL_LOAD_FAILED"
