"""The CLI, run in-process: local-train, local-generate, demo, and error exit codes."""

import hashlib
import runpy
import sys
from pathlib import Path

import orjson
import pytest

from model_trainer import cli
from model_trainer.settings import Settings

TRAIN_ARGS = [
    "--size",
    "tiny",
    "--max-steps",
    "4",
    "--log-every",
    "2",
    "--seq-len",
    "16",
    "--batch-size",
    "4",
]


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Point the CLI's environment at the test's roots."""
    monkeypatch.setenv("ARTIFACTS_ROOT", str(settings["artifacts_root"]))
    monkeypatch.setenv("DATA_ROOT", str(settings["data_root"]))
    monkeypatch.delenv("MAX_CORPUS_BYTES", raising=False)
    return settings


def _train(corpus_path: Path, run_id: str) -> int:
    return cli.main(["local-train", *TRAIN_ARGS, "--run-id", run_id, "--corpus", str(corpus_path)])


def _samples(out: str) -> list[str]:
    """The texts printed after each `--- sample N ---` header."""
    chunks = out.split("--- sample ")[1:]
    return [chunk.split(" ---\n", 1)[1].removesuffix("\n") for chunk in chunks]


def test_local_train_writes_the_run_and_prints_progress(
    cli_env: Settings, corpus_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(corpus_path, "t1") == 0
    directory = cli_env["artifacts_root"] / "runs" / "t1"
    assert (directory / "model.safetensors").stat().st_size > 0
    manifest = orjson.loads((directory / "manifest.json").read_bytes())
    assert manifest["run_id"] == "t1"
    assert manifest["model_size"] == "tiny"
    assert manifest["metrics"]["steps"] == 4
    assert manifest["corpus_sha256"] == hashlib.sha256(corpus_path.read_bytes()).hexdigest()
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith(f"training char_lstm/tiny on {corpus_path} (")
    assert lines[0].endswith(f"-> {directory}")
    assert [line.split()[1] for line in lines if line.startswith("step ")] == ["2/4", "4/4"]
    assert lines[-1].startswith("done: 4 steps in ")


def test_local_generate_continues_the_prompt_and_is_seeded(
    cli_env: Settings, corpus_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(corpus_path, "t1") == 0
    capsys.readouterr()
    generate = ["local-generate", "--run-id", "t1", "--seed", "1", "--max-new-tokens", "20"]
    assert cli.main([*generate, "--prompt", "To"]) == 0
    first = capsys.readouterr().out
    assert first.startswith("--- sample 1 ---\n")
    samples = _samples(first)
    assert len(samples) == 1
    assert samples[0].startswith("To")
    assert cli.main([*generate, "--prompt", "To"]) == 0
    assert capsys.readouterr().out == first


def test_local_generate_prints_each_requested_sample(
    cli_env: Settings, corpus_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(corpus_path, "t2") == 0
    capsys.readouterr()
    argv = ["local-generate", "--run-id", "t2", "--seed", "3", "--num", "3", "--prompt", "Or"]
    assert cli.main([*argv, "--max-new-tokens", "5", "--top-k", "4", "--top-p", "0.9"]) == 0
    samples = _samples(capsys.readouterr().out)
    assert len(samples) == 3
    assert all(sample.startswith("Or") for sample in samples)


def test_unknown_family_exits_2_naming_the_families(
    cli_env: Settings, corpus_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["local-train", *TRAIN_ARGS, "--run-id", "x", "--corpus", str(corpus_path)]
    with pytest.raises(SystemExit) as info:
        cli.main([*argv, "--family", "nope"])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert "argument --family: invalid choice: 'nope' (choose from 'char_lstm', 'gpt2')" in (
        captured.err
    )
    assert captured.out == ""
    assert not (cli_env["artifacts_root"] / "runs" / "x").exists()


def test_a_size_the_family_lacks_exits_2_with_the_code(
    cli_env: Settings, corpus_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["local-train", "--size", "nano", "--run-id", "x", "--corpus", str(corpus_path)]
    assert cli.main(argv) == 2
    assert capsys.readouterr().err.startswith("error: INVALID_MODEL_SIZE: model_size for char_lstm")


def test_corpus_outside_the_roots_exits_2(
    cli_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("some text", encoding="utf-8")
    assert _train(outside, "x") == 2
    assert "PATH_OUTSIDE_ROOT" in capsys.readouterr().err


def test_generate_from_a_missing_run_exits_2(
    cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["local-generate", "--run-id", "never-trained", "--prompt", "a"]) == 2
    assert capsys.readouterr().err.startswith("error: MODEL_NOT_FOUND: ")


def test_local_train_without_a_corpus_builds_the_default_one(
    cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["local-train", "--size", "tiny", "--max-steps", "3", "--seq-len", "16"]
    assert cli.main([*argv, "--batch-size", "4", "--run-id", "d1"]) == 0
    corpus = cli_env["data_root"] / cli.DEFAULT_CORPUS
    assert corpus.stat().st_size == 1_000_000
    directory = cli_env["artifacts_root"] / "runs" / "d1"
    assert (directory / "model.safetensors").is_file()
    assert (directory / "manifest.json").is_file()
    assert f"on {corpus} (1,000,000 bytes)" in capsys.readouterr().out


def test_running_the_module_as_a_script_exits_with_mains_code(
    cli_env: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["model-trainer", "local-train", "--size", "nano"])
    with pytest.raises(SystemExit) as info:
        runpy.run_path(cli.__file__, run_name="__main__")
    assert info.value.code == 2
    assert "INVALID_MODEL_SIZE" in capsys.readouterr().err


def test_a_subcommand_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main([])
    assert info.value.code == 2
    assert "required" in capsys.readouterr().err


def test_an_unreachable_api_exits_2_with_the_reason(
    cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--url", "http://127.0.0.1:1", "jobs"]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_local_train_prints_health_alerts_and_the_stop_reason(
    cli_env: Settings, corpus_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["local-train", *TRAIN_ARGS, "--run-id", "a1", "--corpus", str(corpus_path)]
    assert cli.main([*argv, "grad_norm_alert_max=1e-6"]) == 0
    out = capsys.readouterr().out
    assert "alert: exploding gradients: gradient norm" in out
    assert "(stopped: completed)" in out
    assert any(line.startswith("step ") and " grad " in line for line in out.splitlines())
