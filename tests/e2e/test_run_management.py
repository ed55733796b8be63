"""Managing runs end to end (real Redis, API and worker processes): a run that early-stops
with a gradient alert keeps its metrics history and measured checkpoints, serves a checkpoint,
is continued into a child run, is compared with it, and reads back the same from a fresh API."""

from __future__ import annotations

import orjson
import pytest
from tests.conftest import SAMPLE_TEXT
from tests.support.jobs import finished
from tests.support.processes import start_api, stop

from model_trainer import cli
from model_trainer.client import TrainerClient
from platform_core.json_types import JSONObject, JSONValue, load_json_object


def _cli(url: str, capsys: pytest.CaptureFixture[str], *args: str) -> JSONObject:
    capsys.readouterr()
    assert cli.main(["--url", url, *args]) == 0
    return load_json_object(capsys.readouterr().out)


def _events(client: TrainerClient, job_id: str) -> list[JSONObject]:
    return [load_json_object(event["data"]) for event in client.events(job_id)]


def _steps(points: JSONValue) -> list[JSONValue]:
    assert isinstance(points, list)
    return [point["step"] for point in points if isinstance(point, dict)]


def _early_stopped_run(client: TrainerClient, base: dict[str, JSONValue]) -> str:
    """Evaluations and checkpoints every 10 steps, an alert at the first report, and a
    min_delta no gain can beat: the second evaluation ends the run at step 20."""
    parent = client.submit(
        "train",
        {
            **base,
            "max_steps": 200,
            "eval_every_steps": 10,
            "checkpoint_every_steps": 10,
            "keep_checkpoints": 1,
            "keep_best_checkpoints": 1,
            "early_stopping_patience": 1,
            "early_stopping_min_delta": 10.0,
            "grad_norm_alert_max": 1e-3,
        },
    )
    run_id, job_id = str(parent["run_id"]), str(parent["job_id"])
    events = _events(client, job_id)
    result = client.job(job_id)["result"]
    assert isinstance(result, dict)
    assert (result["stop_reason"], result["steps"]) == ("early_stopping", 20)
    alerts = [e for e in events if e["type"] == "trainer.metrics.alert.v1"]
    assert [(a["kind"], a["step"]) for a in alerts] == [("exploding_gradients", 10)]
    progress = [e for e in events if e["type"] == "trainer.metrics.progress.v1"]
    assert progress and all(isinstance(e.get("grad_norm"), float) for e in progress)
    (completed,) = [e for e in events if e["type"] == "trainer.metrics.completed.v1"]
    assert completed["stop_reason"] == "early_stopping"

    return run_id


def test_metrics_checkpoints_early_stop_alerts_continue_and_compare(
    url: str, service_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    client = TrainerClient(url)
    corpus = client.upload_corpus(SAMPLE_TEXT.encode())
    base: dict[str, JSONValue] = {
        "model_family": "char_lstm",
        "model_size": "tiny",
        "corpus_id": corpus["corpus_id"],
        "max_seq_len": 32,
        "batch_size": 8,
        "device": "cpu",
    }
    run_id = _early_stopped_run(client, base)
    history = client.run_metrics(run_id)
    assert _steps(history["points"]) == [10, 20]
    points = history["points"]
    assert isinstance(points, list)
    assert all(isinstance(p, dict) and isinstance(p["val_loss"], float) for p in points)
    assert _cli(url, capsys, "runs", "metrics", run_id, "--limit", "1")["next_offset"] == 1
    sampled = _cli(url, capsys, "runs", "metrics", run_id, "--points", "2")
    assert _steps(sampled["points"]) == [10, 20]
    checkpoints = _cli(url, capsys, "runs", "checkpoints", run_id)["checkpoints"]
    kept = _steps(checkpoints)
    assert 20 in kept and len(kept) <= 2  # the latest, and the best if it is another

    generated = client.submit(
        "generate",
        {"run_id": run_id, "step": 20, "prompt_text": "To", "max_new_tokens": 5, "seed": 1},
    )
    outputs = finished(client, str(generated["job_id"]))["outputs"]
    assert isinstance(outputs, list) and str(outputs[0]).startswith("To")

    child = client.submit("train", {**base, "max_steps": 10, "continue_from": f"{run_id}@20"})
    child_id = str(child["run_id"])
    finished(client, str(child["job_id"]))
    child_history = client.run_metrics(child_id)["points"]
    assert isinstance(child_history, list) and isinstance(child_history[0], dict)
    first_parent = points[0]
    assert isinstance(first_parent, dict)
    # it starts from the parent's weights: already past the parent's own first report
    assert float(str(child_history[0]["loss"])) < float(str(first_parent["loss"]))

    compared = _cli(url, capsys, "runs", "compare", run_id, child_id)
    differences = compared["config_differences"]
    assert isinstance(differences, dict)
    assert differences["parent"] == {run_id: None, child_id: {"run_id": run_id, "step": 20}}
    assert differences["max_steps"] == {run_id: 200, child_id: 10}
    listed = _cli(
        url, capsys, "runs", "list", "--sort", "val_loss", "--metric", "steps", "--min", "15"
    )
    runs = listed["runs"]
    assert isinstance(runs, list)
    assert [run["run_id"] for run in runs if isinstance(run, dict)] == [run_id]

    # a fresh API process reads the same history from the run directory
    api, second_url = start_api(service_env)
    try:
        again = TrainerClient(second_url).run_metrics(run_id)
    finally:
        stop(api)
    assert orjson.dumps(again) == orjson.dumps(history)
