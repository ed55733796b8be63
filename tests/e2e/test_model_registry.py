"""The model registry end to end: a run trained by the real API and worker is registered twice
(its final model and a checkpoint), promoted with the val-loss gate, forced, rolled back, and
then generated from by `name@production`; the registry commands are the CLI's."""

from __future__ import annotations

import orjson
import pytest
from tests.conftest import SAMPLE_TEXT
from tests.support.jobs import finished

from model_trainer import cli
from model_trainer.client import ApiError, TrainerClient
from model_trainer.settings import Settings
from model_trainer.storage.provenance import checkpoint_dir
from platform_core.json_types import JSONObject, load_json_object

MODEL = "shakespeare"


class Cli:
    """Runs `model-trainer --url URL ...` in this process and reads what it printed."""

    def __init__(self, url: str, capsys: pytest.CaptureFixture[str]) -> None:
        self._url = url
        self._capsys = capsys

    def __call__(self, *args: str, code: int = 0) -> JSONObject | None:
        self._capsys.readouterr()
        assert cli.main(["--url", self._url, *args]) == code
        out = self._capsys.readouterr().out
        return load_json_object(out) if code == 0 else None


def train_with_a_checkpoint(client: TrainerClient) -> tuple[str, float]:
    """A tiny run that leaves a checkpoint at step 20; its id and final val loss."""
    corpus = client.upload_corpus(SAMPLE_TEXT.encode())
    accepted = client.submit(
        "train",
        {
            "model_family": "char_lstm",
            "model_size": "tiny",
            "corpus_id": corpus["corpus_id"],
            "max_seq_len": 32,
            "batch_size": 8,
            "max_steps": 40,
            "checkpoint_every_steps": 20,
            "device": "cpu",
        },
    )
    result = finished(client, str(accepted["job_id"]))
    val_loss = result["val_loss"]
    assert isinstance(val_loss, float)
    return str(accepted["run_id"]), val_loss


def assert_listed(run: Cli, final: JSONObject, step: JSONObject) -> None:
    """show, list, versions and compare after the rollback."""
    shown = run("models", "show", MODEL)
    assert shown is not None and shown["aliases"] == {"production": 1}
    assert shown["latest_version"] == 2
    assert run("models", "list") == {"models": [shown]}
    assert run("models", "versions", MODEL) == {"versions": [final, step], "next_after": None}
    compared = run("models", "compare", MODEL, "1", "2")
    assert compared is not None and compared["config_diff"] == {}
    rows = compared["metrics"]
    assert isinstance(rows, list)
    sides = [(row["version"], row["step"], row["metrics"]) for row in rows if isinstance(row, dict)]
    assert sides == [(1, None, final["metrics"]), (2, 20, step["metrics"])]


def test_register_promote_gate_force_rollback_then_generate_by_alias(
    url: str, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    client = TrainerClient(url)
    run_id, val_loss = train_with_a_checkpoint(client)
    checkpoint = checkpoint_dir(settings, run_id, 20)
    assert checkpoint.is_dir()
    # What the trainer writes beside each checkpoint: here with a worse val loss than the end.
    worse = val_loss + 1.0
    metrics = {"step": 20, "epoch": 0, "train_loss": 2.5, "val_loss": worse, "created_at": "t"}
    (checkpoint / "metrics.json").write_bytes(orjson.dumps(metrics))

    run = Cli(url, capsys)
    created = run("models", "create", MODEL, "--description", "tiny lstm")
    assert created is not None and created["latest_version"] is None
    final = run("models", "register", MODEL, "--run", run_id)
    assert final is not None and (final["version"], final["step"]) == (1, None)
    assert isinstance(final["metrics"], dict)
    assert (final["metrics"]["steps"], final["metrics"]["val_loss"]) == (40, val_loss)
    step = run("models", "register", MODEL, "--run", run_id, "--step", "20")
    assert step is not None and (step["version"], step["metrics"]) == (2, metrics)

    promoted = run("models", "promote", MODEL, "1", "--alias", "production")
    assert promoted == {"alias": "production", "version": 1, "history": []}
    run("models", "promote", MODEL, "2", "--alias", "production", code=2)
    with pytest.raises(ApiError) as refused:
        client.promote(MODEL, "production", 2)
    assert refused.value.code == "PROMOTION_REFUSED"
    forced = run("models", "promote", MODEL, "2", "--alias", "production", "--force")
    assert forced == {"alias": "production", "version": 2, "history": [1]}
    rolled = run("models", "rollback", MODEL, "--alias", "production")
    assert rolled == {"alias": "production", "version": 1, "history": []}
    run("models", "rollback", MODEL, "--alias", "production", code=2)

    assert_listed(run, final, step)

    generated = client.submit(
        "generate",
        {"model": f"{MODEL}@production", "prompt_text": "To be", "max_new_tokens": 20, "seed": 3},
    )
    assert generated["run_id"] == run_id
    outputs = finished(client, str(generated["job_id"]))
    texts = outputs["outputs"]
    assert isinstance(texts, list) and len(texts) == 1
    assert isinstance(texts[0], str) and texts[0].startswith("To be")

    # The CLI's submit takes the reference too, and follows the job to its end.
    follow = ["prompt_text=To", "max_new_tokens=10", "--model", f"{MODEL}/2", "--follow"]
    assert cli.main(["--url", url, "submit", "generate", *follow]) == 0
    latest = client.jobs(type="generate", limit=1)["jobs"]
    assert isinstance(latest, list) and isinstance(latest[0], dict)
    assert (latest[0]["status"], latest[0]["run_id"]) == ("completed", run_id)
    client.close()
