"""The CLI's service commands against a running API and worker."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from tests.conftest import SAMPLE_TEXT

from model_trainer import cli
from platform_core.json_types import load_json_object


def _json(text: str) -> dict[str, object]:
    """The JSON document a command printed (the follow output comes after it)."""
    start, end = text.index("{"), text.rindex("}") + 1
    return dict(load_json_object(text[start:end]))


def test_upload_submit_follow_jobs_and_cancel(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(SAMPLE_TEXT)
    assert cli.main(["--url", url, "upload", str(corpus)]) == 0
    corpus_id = _json(capsys.readouterr().out)["corpus_id"]

    fields = ["model_family=char_lstm", "model_size=tiny", f"corpus_id={corpus_id}"]
    fields += ["max_steps=20", "max_seq_len=32", "batch_size=8", "log_every_steps=5"]
    assert cli.main(["--url", url, "submit", "train", *fields, "--follow"]) == 0
    out = capsys.readouterr().out
    accepted = load_json_object(out[: out.index("}") + 1])
    assert accepted["status"] == "queued"
    assert "100.0%" in out
    assert "completed" in out

    assert cli.main(["--url", url, "follow", str(accepted["job_id"])]) == 0
    assert "completed" in capsys.readouterr().out

    listing = ["jobs", "--status", "completed", "--type", "train", "--json"]
    assert cli.main(["--url", url, *listing]) == 0
    listed = orjson.loads(capsys.readouterr().out)
    assert [job["job_id"] for job in listed["jobs"]] == [accepted["job_id"]]

    assert cli.main(["--url", url, "cancel", str(accepted["job_id"])]) == 2
    assert "JOB_ALREADY_FINISHED" in capsys.readouterr().err

    assert cli.main(["--url", url, "submit", "generate", "run_id=nope", "prompt_text=x"]) == 2
    assert "MODEL_NOT_FOUND" in capsys.readouterr().err

    assert cli.main(["--url", url, "follow", "no-such-job"]) == 2
    assert "JOB_NOT_FOUND" in capsys.readouterr().err

    long_run = [*fields[:3], "max_steps=1000000", "max_seq_len=32"]
    assert cli.main(["--url", url, "submit", "train", *long_run]) == 0
    queued = _json(capsys.readouterr().out)
    assert cli.main(["--url", url, "cancel", str(queued["job_id"])]) == 0
    assert _json(capsys.readouterr().out)["job_id"] == queued["job_id"]
    assert cli.main(["jobs", "--url", url, "--json"]) == 0
    listed_all = orjson.loads(capsys.readouterr().out)
    assert [job["job_id"] for job in listed_all["jobs"]] == [queued["job_id"], accepted["job_id"]]


def test_a_job_that_fails_in_the_worker_makes_follow_exit_1(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(SAMPLE_TEXT)
    assert cli.main(["--url", url, "upload", str(corpus)]) == 0
    corpus_id = _json(capsys.readouterr().out)["corpus_id"]
    # valid on its face, but longer windows than the corpus holds: only training finds out
    fields = ["model_family=char_lstm", "model_size=tiny", f"corpus_id={corpus_id}"]
    assert cli.main(["--url", url, "submit", "train", *fields, "max_seq_len=8000", "--follow"]) == 1
    assert "failed: CORPUS_EMPTY (user)" in capsys.readouterr().out
    assert cli.main(["--url", url, "submit", "train", "model_size=tiny", "nonsense"]) == 2
    assert "expected key=value" in capsys.readouterr().err
