"""Runs as users manage them: sorted and filtered listings, the metrics history, checkpoints,
a comparison, and jobs that use a checkpoint or continue from one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import fakeredis
from fastapi.testclient import TestClient
from rq.job import Job
from rq.serializers import JSONSerializer
from tests.unit.api.conftest import bearer

from model_trainer.settings import Settings
from model_trainer.storage.api_keys import create_key
from model_trainer.storage.checkpoints import checkpoint_name, write_metrics
from model_trainer.storage.owners import Owned
from model_trainer.storage.run_metrics import MetricPoint, append_point
from model_trainer.storage.runs import RunManifest, run_dir, write_manifest
from platform_core.json_types import JSONObject, JSONValue

SaveRun = Callable[[str, str], RunManifest]


def _run(
    save_run: SaveRun,
    settings: Settings,
    run_id: str,
    day: int,
    *,
    val_loss: float | None,
    family: str = "char_lstm",
    learning_rate: float = 3e-3,
) -> RunManifest:
    manifest = save_run(run_id, f"2026-01-{day:02d}T00:00:00+00:00")
    manifest["metrics"]["val_loss"] = val_loss
    manifest["metrics"]["best_val_loss"] = val_loss
    manifest["config"]["learning_rate"] = learning_rate
    if family == "gpt2":
        manifest["model_family"] = "gpt2"
    write_manifest(run_dir(settings, run_id), manifest)
    return manifest


def _point(step: int, loss: float, val_loss: float | None = None) -> MetricPoint:
    return {
        "step": step,
        "epoch": 0,
        "loss": loss,
        "val_loss": val_loss,
        "learning_rate": 0.01,
        "grad_norm": 1.5,
        "tokens_per_second": 500.0,
        "elapsed_s": step / 10,
    }


def _history(settings: Settings, run_id: str, points: list[MetricPoint]) -> None:
    directory = run_dir(settings, run_id)
    directory.mkdir(parents=True, exist_ok=True)
    for point in points:
        append_point(directory / "metrics.jsonl", point)


def _checkpoint(settings: Settings, run_id: str, step: int, val_loss: float | None) -> Path:
    directory = run_dir(settings, run_id) / "checkpoints" / checkpoint_name(step)
    directory.mkdir(parents=True)
    (directory / "model.safetensors").write_bytes(b"w" * 10)
    write_metrics(
        directory,
        {
            "step": step,
            "epoch": 0,
            "train_loss": 2.0,
            "val_loss": val_loss,
            "created_at": "2026-01-01T00:00:00+00:00",
        },
    )
    return directory


def _ids(client: TestClient, query: str) -> list[str]:
    response = client.get(f"/v1/runs?{query}")
    assert response.status_code == 200, response.text
    return [run["run_id"] for run in response.json()["runs"]]


def _error(response: object) -> JSONValue:
    assert hasattr(response, "json")
    body: JSONObject = response.json()
    return body["error"]


def test_runs_sort_and_filter_by_a_metric(
    client: TestClient, settings: Settings, save_run: SaveRun
) -> None:
    _run(save_run, settings, "a", 1, val_loss=2.0)
    _run(save_run, settings, "b", 2, val_loss=1.0, family="gpt2")
    _run(save_run, settings, "c", 3, val_loss=None)
    _run(save_run, settings, "d", 4, val_loss=1.5)
    assert _ids(client, "") == ["d", "c", "b", "a"]
    assert _ids(client, "sort=val_loss") == ["b", "d", "a", "c"]  # no val_loss: last
    assert _ids(client, "sort=val_loss&order=desc") == ["a", "d", "b", "c"]
    assert _ids(client, "sort=created_at&order=asc&limit=2") == ["a", "b"]
    assert _ids(client, "metric=val_loss&max=1.5") == ["d", "b"]
    assert _ids(client, "metric=best_val_loss&min=1.2&max=2") == ["d", "a"]
    assert _ids(client, "model_family=gpt2") == ["b"]
    summary = client.get("/v1/runs?limit=1").json()["runs"][0]
    assert (summary["steps"], summary["stop_reason"], summary["best_val_loss"]) == (
        10,
        "completed",
        1.5,
    )
    bad = client.get("/v1/runs?sort=color")
    assert bad.status_code == 422 and _error(bad) == {
        "code": "INVALID_CONFIG",
        "message": bad.json()["error"]["message"],
        "details": {"field": "sort"},
    }


def test_the_metrics_history_pages_and_downsamples(
    client: TestClient, settings: Settings, save_run: SaveRun
) -> None:
    save_run("r1", "2026-01-01T00:00:00+00:00")
    _history(
        settings, "r1", [_point(s, 3.0 - s / 10, 2.5 if s == 20 else None) for s in range(5, 25, 5)]
    )
    first = client.get("/v1/runs/r1/metrics?limit=3").json()
    assert (first["total"], first["next_offset"]) == (4, 3)
    assert [p["step"] for p in first["points"]] == [5, 10, 15]
    rest = client.get("/v1/runs/r1/metrics?offset=3").json()
    assert [(p["step"], p["val_loss"]) for p in rest["points"]] == [(20, 2.5)]
    assert rest["next_offset"] is None
    sampled = client.get("/v1/runs/r1/metrics?points=2").json()
    assert [(p["step"], p["loss"], p["val_loss"]) for p in sampled["points"]] == [
        (10, 2.25, None),
        (20, 1.25, 2.5),
    ]
    assert client.get("/v1/runs/r1/metrics?points=1").status_code == 422


def test_history_and_checkpoints_are_readable_while_a_run_trains(
    client: TestClient, settings: Settings, own: Callable[[Owned, str], None]
) -> None:
    own("run", "live")
    _history(settings, "live", [_point(5, 2.0)])
    _checkpoint(settings, "live", 5, None)
    assert [p["step"] for p in client.get("/v1/runs/live/metrics").json()["points"]] == [5]
    listed = client.get("/v1/runs/live/checkpoints").json()
    assert listed["run_id"] == "live"
    assert [(c["step"], c["train_loss"], c["val_loss"]) for c in listed["checkpoints"]] == [
        (5, 2.0, None)
    ]
    assert listed["checkpoints"][0]["bytes"] > 10
    # still training: no manifest, so the run is not yet listed or comparable
    assert client.get("/v1/runs").json() == {"runs": []}


def test_another_users_run_is_as_unknown_as_a_missing_one(
    client: TestClient, settings: Settings, redis: fakeredis.FakeRedis, save_run: SaveRun
) -> None:
    save_run("r1", "2026-01-01T00:00:00+00:00")
    _history(settings, "r1", [_point(5, 2.0)])
    bob = bearer(create_key(redis, "bob"))
    for path in ("/v1/runs/r1/metrics", "/v1/runs/r1/checkpoints", "/v1/runs/nope/metrics"):
        response = client.get(path, headers=bob)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "MODEL_NOT_FOUND"
    assert client.get("/v1/runs/compare?ids=r1,r1x", headers=bob).status_code == 404


def test_a_damaged_history_is_a_coded_error(
    client: TestClient, settings: Settings, save_run: SaveRun
) -> None:
    save_run("r1", "2026-01-01T00:00:00+00:00")
    (run_dir(settings, "r1") / "metrics.jsonl").write_bytes(b"{nope\n" + b'{"step": 1}\n')
    response = client.get("/v1/runs/r1/metrics")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "ARTIFACT_CORRUPT"


def test_compare_shows_config_differences_and_best_and_final_figures(
    client: TestClient, settings: Settings, save_run: SaveRun
) -> None:
    _run(save_run, settings, "a", 1, val_loss=2.0, learning_rate=0.01)
    _run(save_run, settings, "b", 2, val_loss=1.0, learning_rate=0.02)
    _history(settings, "a", [_point(5, 2.5, 2.2), _point(10, 2.4, 2.6)])
    response = client.get("/v1/runs/compare?ids=a, b,a")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["config_differences"] == {"learning_rate": {"a": 0.01, "b": 0.02}}
    first, second = body["runs"]
    assert first["best"] == {"loss": 2.4, "loss_step": 10, "val_loss": 2.2, "val_loss_step": 5}
    assert first["final"] == {
        "loss": 1.5,
        "val_loss": 2.0,
        "steps": 10,
        "elapsed_s": 1.28,
        "stop_reason": "completed",
    }
    assert second["best"] == {
        "loss": None,
        "loss_step": None,
        "val_loss": None,
        "val_loss_step": None,
    }
    for query in ("ids=a", "ids=" + ",".join(f"r{i}" for i in range(11))):
        refused = client.get(f"/v1/runs/compare?{query}")
        assert refused.status_code == 422
        assert refused.json()["error"]["details"] == {"field": "ids"}


def _payload(redis: fakeredis.FakeRedis, job_id: str) -> JSONObject:
    (payload,) = Job.fetch(job_id, connection=redis, serializer=JSONSerializer).args
    assert isinstance(payload, dict)
    return payload


def test_inference_jobs_take_a_checkpoint_step(
    client: TestClient, settings: Settings, redis: fakeredis.FakeRedis, save_run: SaveRun
) -> None:
    save_run("r1", "2026-01-01T00:00:00+00:00")
    _checkpoint(settings, "r1", 20, 1.5)
    bodies: dict[str, JSONObject] = {
        "eval": {"run_id": "r1", "step": 20},
        "score": {"run_id": "r1", "step": 20, "text": "to be"},
        "generate": {"run_id": "r1", "step": 20, "prompt_text": "to"},
        "export": {"run_id": "r1", "step": 20},
    }
    for job_type, body in bodies.items():
        response = client.post(f"/v1/jobs/{job_type}", json=body)
        assert response.status_code == 202, response.text
        assert _payload(redis, response.json()["job_id"])["step"] == 20
        missing = client.post(f"/v1/jobs/{job_type}", json={**body, "step": 21})
        assert missing.status_code == 404
        assert missing.json()["error"] == {
            "code": "CHECKPOINT_NOT_FOUND",
            "message": "run r1 has no checkpoint at step 21",
            "details": {"field": "step", "run_id": "r1", "step": 21},
        }
    both = client.post("/v1/jobs/generate", json={"model": "m@prod", "step": 20})
    assert both.status_code == 422
    assert both.json()["error"]["details"] == {"field": "step"}


def _train(corpus_path: Path, **fields: JSONValue) -> JSONObject:
    return {
        "model_family": "char_lstm",
        "model_size": "tiny",
        "corpus_path": corpus_path.name,
        **fields,
    }


def test_a_train_job_continues_from_a_checkpoint_with_its_parent_recorded(
    client: TestClient,
    settings: Settings,
    redis: fakeredis.FakeRedis,
    save_run: SaveRun,
    corpus_path: Path,
) -> None:
    save_run("r1", "2026-01-01T00:00:00+00:00")
    _checkpoint(settings, "r1", 20, 1.5)
    for ref, parent in (
        ("r1@20", {"run_id": "r1", "step": 20}),
        ("r1", {"run_id": "r1", "step": None}),
    ):
        response = client.post("/v1/jobs/train", json=_train(corpus_path, continue_from=ref))
        assert response.status_code == 202, response.text
        payload = _payload(redis, response.json()["job_id"])
        config = payload["config"]
        assert isinstance(config, dict)
        assert config["parent"] == parent
        assert payload["tokenizer_id"] == "char-r1"


def test_continuing_refuses_what_the_parent_could_not_give(
    client: TestClient, settings: Settings, save_run: SaveRun, corpus_path: Path
) -> None:
    save_run("r1", "2026-01-01T00:00:00+00:00")
    cases: list[tuple[JSONObject, int, str, str]] = [
        (_train(corpus_path, continue_from="r1@x"), 422, "INVALID_CONFIG", "continue_from"),
        (_train(corpus_path, continue_from="r1@"), 422, "INVALID_CONFIG", "continue_from"),
        (_train(corpus_path, continue_from="r1@7"), 404, "CHECKPOINT_NOT_FOUND", "step"),
        (_train(corpus_path, continue_from="nope"), 404, "MODEL_NOT_FOUND", "run_id"),
        (
            {**_train(corpus_path, continue_from="r1"), "model_size": "small"},
            400,
            "MODEL_INCOMPATIBLE",
            "continue_from",
        ),
        (
            _train(corpus_path, continue_from="r1", tokenizer_id="char-other"),
            422,
            "INVALID_CONFIG",
            "tokenizer_id",
        ),
        (
            {**_train(corpus_path, continue_from="r1"), "model_family": "gpt2", "init_from": "x"},
            422,
            "INVALID_CONFIG",
            "continue_from",
        ),
    ]
    for body, status, code, field in cases:
        response = client.post("/v1/jobs/train", json=body)
        assert response.status_code == status, (body, response.text)
        error = response.json()["error"]
        assert (error["code"], error["details"]["field"]) == (code, field), body
