"""What every backend shares (causal_lm.CausalLMBackend), checked for each family with real
tensors and files: training, the run directory, save/load, exact resume, evaluation, and
inference that stops when its job is cancelled."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from tests.support.backends import char_tokenizer, quiet_callbacks, train_cfg, train_run

from model_trainer.backends.causal_lm import as_module, num_params
from model_trainer.backends.registry import get_backend
from model_trainer.contracts.defaults import make_eval_config, make_generate_config
from model_trainer.contracts.model import (
    MODEL_FAMILIES,
    ModelFamily,
    PreparedLMModel,
    StepMetrics,
    TrainingCallbacks,
)
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.run_metrics import read_points
from model_trainer.tokenizers.char import CharTokenizer

PROBE = "To be, or not to be—ü"
TOKENIZER_FILES = [
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer_meta.json",
]
# What a run directory holds besides the tokenizer: GPT-2's is Hugging Face's layout.
RUN_FILES: dict[ModelFamily, list[str]] = {
    "char_lstm": [
        "checkpoints",
        "config.json",
        "manifest.json",
        "metrics.jsonl",
        "model.safetensors",
    ],
    "gpt2": [
        "checkpoints",
        "config.json",
        "generation_config.json",
        "manifest.json",
        "metrics.jsonl",
        "model.safetensors",
    ],
}

pytestmark = pytest.mark.parametrize("family", MODEL_FAMILIES)


def _logits(prepared: PreparedLMModel, text: str) -> torch.Tensor:
    ids = torch.tensor([prepared["tokenizer"].encode(text)])
    with torch.no_grad():
        return prepared["model"].eval()(ids)


def _same_weights(a: PreparedLMModel, b: PreparedLMModel) -> bool:
    left, right = as_module(a["model"]).state_dict(), as_module(b["model"]).state_dict()
    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)


def test_train_learns_and_writes_a_complete_run_directory(
    family: ModelFamily, settings: Settings, corpus_path: Path
) -> None:
    backend = get_backend(family)
    progress: list[StepMetrics] = []
    cfg = train_cfg(family, corpus_path)
    prepared, outcome, run_dir = train_run(
        backend, settings, cfg, "learn", callbacks=quiet_callbacks(progress)
    )
    assert outcome["steps"] == 30
    assert [m["step"] for m in progress] == [5, 10, 15, 20, 25, 30]
    assert progress[-1]["loss"] < progress[0]["loss"]
    assert outcome["val_loss"] is not None and outcome["val_loss"] < 3.0
    assert outcome["val_perplexity"] is not None
    assert outcome["out_dir"] == str(run_dir)
    assert outcome["resumed_from_step"] is None
    assert outcome["stop_reason"] == "completed"
    history = read_points(run_dir / "metrics.jsonl")
    assert [p["step"] for p in history] == [m["step"] for m in progress]
    assert [p["loss"] for p in history] == [m["loss"] for m in progress]
    evaluated = [p for p in history if p["val_loss"] is not None]
    assert evaluated[-1]["val_loss"] == outcome["val_loss"]
    best = min(evaluated, key=lambda p: p["val_loss"] or 0.0)
    assert (outcome["best_val_loss"], outcome["best_step"]) == (best["val_loss"], best["step"])
    assert all(p["grad_norm"] > 0 for p in history)
    names = sorted(p.name for p in run_dir.iterdir())
    assert names == sorted(RUN_FILES[family] + TOKENIZER_FILES)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["run_id"] == "learn"
    assert (manifest["model_family"], manifest["model_size"]) == (family, "tiny")
    assert manifest["config"] == cfg
    assert manifest["metrics"] == outcome
    assert manifest["corpus_sha256"] == hashlib.sha256(corpus_path.read_bytes()).hexdigest()
    assert manifest["corpus_bytes"] == corpus_path.stat().st_size
    assert manifest["tokenizer_id"] == "char-test"
    assert {"python", "torch", "safetensors"} <= manifest["library_versions"].keys()
    assert "git_commit" in manifest and manifest["device"] == "cpu"
    assert manifest["num_params"] == num_params(prepared["model"])


def test_save_then_load_gives_identical_logits(
    family: ModelFamily, settings: Settings, corpus_path: Path
) -> None:
    backend = get_backend(family)
    prepared, _, run_dir = train_run(backend, settings, train_cfg(family, corpus_path), "run-1")
    loaded = backend.load(str(run_dir), settings)
    assert torch.equal(_logits(prepared, PROBE), _logits(loaded, PROBE))
    assert (loaded["model_family"], loaded["model_size"]) == (family, "tiny")
    assert loaded["tokenizer_id"] == "char-test"
    assert loaded["tokenizer"].encode(PROBE) == prepared["tokenizer"].encode(PROBE)
    assert not as_module(loaded["model"]).training
    out_dir = settings["artifacts_root"] / "copy"
    assert backend.save(prepared, str(out_dir)) == {
        "out_dir": str(out_dir),
        "weights_path": str(out_dir / "model.safetensors"),
        "manifest_path": str(out_dir / "manifest.json"),
    }
    assert torch.equal(_logits(backend.load(str(out_dir), settings), PROBE), _logits(loaded, PROBE))


def test_load_refuses_a_missing_run_and_a_mismatched_tokenizer(
    family: ModelFamily, settings: Settings, corpus_path: Path
) -> None:
    backend = get_backend(family)
    prepared, _, run_dir = train_run(backend, settings, train_cfg(family, corpus_path), "run-1")
    with pytest.raises(ModelTrainerError) as missing:
        backend.load(str(run_dir.parent / "nope"), settings)
    assert missing.value.code == "MODEL_NOT_FOUND"
    saved = settings["artifacts_root"] / "saved"  # no manifest: no digests to refuse it by
    backend.save(prepared, str(saved))
    CharTokenizer.build("ab", "other").save(saved)
    with pytest.raises(ModelTrainerError) as mismatch:
        backend.load(str(saved), settings)
    assert mismatch.value.code == "MODEL_INCOMPATIBLE"
    assert mismatch.value.http_status == 400
    assert mismatch.value.details["tokenizer_id"] == "other"


def test_a_retried_train_resumes_to_the_same_weights(
    family: ModelFamily, settings: Settings, corpus_path: Path
) -> None:
    backend = get_backend(family)
    cfg = train_cfg(family, corpus_path)
    _, straight, straight_dir = train_run(backend, settings, cfg, "straight")
    stop_after = iter(range(1_000))
    stopping: TrainingCallbacks = {
        "heartbeat": lambda _: None,
        "cancelled": lambda: next(stop_after) >= 15,
        "progress": None,
        "alert": None,
        "prune": None,
    }
    with pytest.raises(ModelTrainerError) as caught:
        train_run(backend, settings, cfg, "retried", callbacks=stopping)
    assert caught.value.code == "TRAINING_CANCELLED"
    _, resumed, run_dir = train_run(backend, settings, cfg, "retried")
    assert resumed["resumed_from_step"] == 15
    assert resumed["steps"] == straight["steps"]
    assert resumed["val_loss"] == straight["val_loss"]
    assert _same_weights(
        backend.load(str(straight_dir), settings), backend.load(str(run_dir), settings)
    )


def test_evaluate_on_the_validation_split_and_on_all_text(
    family: ModelFamily, settings: Settings, corpus_path: Path
) -> None:
    backend = get_backend(family)
    prepared, outcome, _ = train_run(backend, settings, train_cfg(family, corpus_path), "run-1")
    val = backend.evaluate(
        prepared=prepared,
        cfg=make_eval_config(corpus_path=str(corpus_path), max_seq_len=32, batch_size=8),
        settings=settings,
    )
    # the loop evaluated the same split at the end of training
    assert val["loss"] == pytest.approx(outcome["val_loss"])
    everything = backend.evaluate(
        prepared=prepared,
        cfg=make_eval_config(
            corpus_path=str(corpus_path), split="all", max_seq_len=32, batch_size=8, max_batches=3
        ),
        settings=settings,
    )
    assert everything["tokens"] == 3 * 8 * 32
    assert everything["perplexity"] == pytest.approx(torch.tensor(everything["loss"]).exp().item())


def _stops_on_call(n: int, calls: list[int]) -> Callable[[], bool]:
    """A cancel check that counts its calls into `calls` and says yes from the n-th on."""

    def should_stop() -> bool:
        calls.append(len(calls) + 1)
        return len(calls) >= n

    return should_stop


def test_a_cancelled_generate_stops_between_tokens(
    family: ModelFamily, settings: Settings, corpus_path: Path
) -> None:
    backend = get_backend(family)
    prepared = backend.prepare(train_cfg(family, corpus_path), settings, tokenizer=char_tokenizer())
    short = make_generate_config(prompt_text="To", max_new_tokens=20, seed=5, stop_on_eos=False)
    unchecked = backend.generate(prepared=prepared, cfg=short, settings=settings)
    checked = backend.generate(
        prepared=prepared, cfg=short, settings=settings, should_stop=lambda: False
    )
    assert checked == unchecked
    calls: list[int] = []
    long = make_generate_config(prompt_text="To", max_new_tokens=4096, stop_on_eos=False)
    with pytest.raises(ModelTrainerError) as caught:
        backend.generate(
            prepared=prepared, cfg=long, settings=settings, should_stop=_stops_on_call(5, calls)
        )
    assert caught.value.code == "TRAINING_CANCELLED"
    assert caught.value.message == "generation cancelled after 4 of 4096 tokens"
    assert len(calls) == 5


def test_a_cancelled_evaluation_stops_between_batches(
    family: ModelFamily, settings: Settings, corpus_path: Path
) -> None:
    backend = get_backend(family)
    prepared = backend.prepare(train_cfg(family, corpus_path), settings, tokenizer=char_tokenizer())
    cfg = make_eval_config(corpus_path=str(corpus_path), split="all", max_seq_len=32, batch_size=8)
    calls: list[int] = []
    with pytest.raises(ModelTrainerError) as caught:
        backend.evaluate(
            prepared=prepared, cfg=cfg, settings=settings, should_stop=_stops_on_call(3, calls)
        )
    assert caught.value.code == "TRAINING_CANCELLED"
    assert caught.value.message.startswith("evaluation cancelled after 2 of ")
    assert len(calls) == 3


def test_a_continued_run_starts_from_its_parents_weights(
    family: ModelFamily, settings: Settings, corpus_path: Path
) -> None:
    """From the final model, or from a checkpoint (`run@step`), before any training step."""
    backend = get_backend(family)
    parent, _, run_dir = train_run(backend, settings, train_cfg(family, corpus_path), "parent")
    tokenizer = parent["tokenizer"]
    for step in (None, 20):
        cfg = train_cfg(family, corpus_path)
        cfg["parent"] = {"run_id": "parent", "step": step}
        child = backend.prepare(cfg, settings, tokenizer=tokenizer)
        if step is None:
            assert _same_weights(child, parent)
        else:
            loaded = backend.load_at(str(run_dir), settings, step=step)
            assert _same_weights(child, loaded) and not _same_weights(child, parent)
