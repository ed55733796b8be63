"""The char-LSTM backend end to end through its adapter, with real tensors and files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from tests.conftest import SAMPLE_TEXT

from model_trainer.backends.char_lstm import BACKEND as CHAR_LSTM_BACKEND
from model_trainer.backends.char_lstm import CharLSTMModel, as_char_lstm
from model_trainer.backends.gpt2 import BACKEND as GPT2_BACKEND
from model_trainer.backends.presets import char_lstm_dims
from model_trainer.contracts.defaults import (
    make_eval_config,
    make_generate_config,
    make_score_config,
)
from model_trainer.contracts.model import (
    PreparedLMModel,
    StepMetrics,
    TrainingCallbacks,
    TrainOutcome,
)
from model_trainer.contracts.train_config import TRAIN_DEFAULTS, ModelTrainConfig, make_train_config
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.corpora import read_corpus
from model_trainer.tokenizers.bpe import BPETokenizer
from model_trainer.tokenizers.char import CharTokenizer


def _cfg(corpus: Path, **overrides: int) -> ModelTrainConfig:
    return make_train_config(
        model_family="char_lstm",
        model_size="tiny",
        corpus_path=str(corpus),
        options={
            **TRAIN_DEFAULTS,
            "max_seq_len": 32,
            "batch_size": 8,
            "learning_rate": 1e-2,
            "max_steps": overrides.get("max_steps", 30),
            "num_epochs": 50,
            "log_every_steps": 5,
            "checkpoint_every_steps": overrides.get("checkpoint_every_steps", 10),
            "device": "cpu",
        },
    )


def _callbacks(progress: list[StepMetrics]) -> TrainingCallbacks:
    return {"heartbeat": lambda _: None, "cancelled": lambda: False, "progress": progress.append}


def _tokenizer() -> CharTokenizer:
    return CharTokenizer.build(SAMPLE_TEXT, "char-test")


def _train(
    settings: Settings, corpus: Path, run_id: str = "run-1"
) -> tuple[PreparedLMModel, TrainOutcome, Path]:
    cfg = _cfg(corpus)
    prepared = CHAR_LSTM_BACKEND.prepare(cfg, settings, tokenizer=_tokenizer())
    run_dir = settings["artifacts_root"] / "runs" / run_id
    outcome = CHAR_LSTM_BACKEND.train(
        cfg,
        settings,
        corpus=read_corpus(cfg["corpus_path"], settings),
        run_dir=str(run_dir),
        prepared=prepared,
        callbacks=_callbacks([]),
    )
    return prepared, outcome, run_dir


@pytest.fixture
def trained(settings: Settings, corpus_path: Path) -> tuple[PreparedLMModel, TrainOutcome, Path]:
    return _train(settings, corpus_path)


def test_prepare_builds_the_size_preset_seeded(settings: Settings, corpus_path: Path) -> None:
    cfg = _cfg(corpus_path)
    a = CHAR_LSTM_BACKEND.prepare(cfg, settings, tokenizer=_tokenizer())
    b = CHAR_LSTM_BACKEND.prepare(cfg, settings, tokenizer=_tokenizer())
    model = as_char_lstm(a["model"])
    assert model.embed.embedding_dim == char_lstm_dims("tiny")["embed_dim"]
    assert model.head.out_features == _tokenizer().vocab_size
    assert a["tokenizer_id"] == "char-test" and a["max_seq_len"] == 32
    assert a["eos_id"] == 1 and a["pad_id"] == 0
    assert CHAR_LSTM_BACKEND.family == "char_lstm"
    for p, q in zip(model.parameters(), as_char_lstm(b["model"]).parameters(), strict=True):
        assert torch.equal(p, q)


def test_unknown_size_is_a_coded_error(settings: Settings, corpus_path: Path) -> None:
    cfg = _cfg(corpus_path)
    cfg["model_size"] = "huge"
    with pytest.raises(ModelTrainerError) as caught:
        CHAR_LSTM_BACKEND.prepare(cfg, settings, tokenizer=_tokenizer())
    assert caught.value.code == "INVALID_MODEL_SIZE"


def test_train_learns_and_writes_a_complete_run_directory(
    settings: Settings, corpus_path: Path
) -> None:
    progress: list[StepMetrics] = []
    cfg = _cfg(corpus_path)
    prepared = CHAR_LSTM_BACKEND.prepare(cfg, settings, tokenizer=_tokenizer())
    run_dir = settings["artifacts_root"] / "runs" / "learn"
    outcome = CHAR_LSTM_BACKEND.train(
        cfg,
        settings,
        corpus=read_corpus(cfg["corpus_path"], settings),
        run_dir=str(run_dir),
        prepared=prepared,
        callbacks=_callbacks(progress),
    )
    assert outcome["steps"] == 30
    assert [m["step"] for m in progress] == [5, 10, 15, 20, 25, 30]
    assert progress[-1]["loss"] < progress[0]["loss"]
    assert outcome["val_loss"] is not None and outcome["val_perplexity"] is not None
    assert outcome["out_dir"] == str(run_dir)
    assert outcome["resumed_from_step"] is None
    names = sorted(p.name for p in run_dir.iterdir())
    assert names == [
        "checkpoints",
        "config.json",
        "manifest.json",
        "model.safetensors",
        "special_tokens_map.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "tokenizer_meta.json",
    ]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["run_id"] == "learn"
    assert manifest["config"] == cfg
    assert manifest["metrics"] == outcome
    assert manifest["corpus_sha256"] == hashlib.sha256(corpus_path.read_bytes()).hexdigest()
    assert manifest["corpus_bytes"] == corpus_path.stat().st_size
    assert {"python", "torch", "safetensors"} <= manifest["library_versions"].keys()
    assert "git_commit" in manifest and manifest["device"] == "cpu"
    assert manifest["num_params"] == sum(
        p.numel() for p in as_char_lstm(prepared["model"]).parameters()
    )


def test_save_then_load_gives_identical_logits(
    settings: Settings, trained: tuple[PreparedLMModel, TrainOutcome, Path]
) -> None:
    prepared, _, run_dir = trained
    loaded = CHAR_LSTM_BACKEND.load(str(run_dir), settings)
    ids = torch.tensor([prepared["tokenizer"].encode("To be, or not")])
    original = as_char_lstm(prepared["model"]).eval()
    with torch.no_grad():
        assert torch.equal(original(ids), as_char_lstm(loaded["model"])(ids))
    tokens = [loaded["tokenizer"].id_to_token(i) for i in range(loaded["tokenizer"].vocab_size)]
    original_tokenizer = prepared["tokenizer"]
    assert tokens == [original_tokenizer.id_to_token(i) for i in range(len(tokens))]
    assert len(tokens) == original_tokenizer.vocab_size
    assert loaded["tokenizer_id"] == "char-test"
    assert loaded["model_size"] == "tiny"


def test_save_through_the_adapter_writes_a_loadable_run(
    settings: Settings, trained: tuple[PreparedLMModel, TrainOutcome, Path]
) -> None:
    prepared, _, _ = trained
    out_dir = settings["artifacts_root"] / "copy"
    artifact = CHAR_LSTM_BACKEND.save(prepared, str(out_dir))
    assert artifact == {
        "out_dir": str(out_dir),
        "weights_path": str(out_dir / "model.safetensors"),
        "manifest_path": str(out_dir / "manifest.json"),
    }
    assert CHAR_LSTM_BACKEND.load(str(out_dir), settings)["tokenizer_id"] == "char-test"


def test_load_refuses_a_missing_run_and_a_mismatched_tokenizer(
    settings: Settings, trained: tuple[PreparedLMModel, TrainOutcome, Path]
) -> None:
    _, _, run_dir = trained
    with pytest.raises(ModelTrainerError) as missing:
        CHAR_LSTM_BACKEND.load(str(run_dir.parent / "nope"), settings)
    assert missing.value.code == "MODEL_NOT_FOUND"
    CharTokenizer.build("ab", "other").save(run_dir)
    with pytest.raises(ModelTrainerError) as mismatch:
        CHAR_LSTM_BACKEND.load(str(run_dir), settings)
    assert mismatch.value.code == "MODEL_INCOMPATIBLE"
    assert mismatch.value.http_status == 400
    assert mismatch.value.details["tokenizer_id"] == "other"


def test_a_bpe_tokenizer_trains_scores_per_token_and_comes_back_on_load(
    settings: Settings, corpus_path: Path
) -> None:
    tokenizer = BPETokenizer.train(SAMPLE_TEXT, "bpe-test", vocab_size=300)
    cfg = _cfg(corpus_path, max_steps=10)
    prepared = CHAR_LSTM_BACKEND.prepare(cfg, settings, tokenizer=tokenizer)
    assert as_char_lstm(prepared["model"]).head.out_features == tokenizer.vocab_size
    run_dir = settings["artifacts_root"] / "runs" / "bpe"
    CHAR_LSTM_BACKEND.train(
        cfg,
        settings,
        corpus=read_corpus(cfg["corpus_path"], settings),
        run_dir=str(run_dir),
        prepared=prepared,
        callbacks=_callbacks([]),
    )
    text = "To be, or not to be—ü 🎭"
    ids, spans = tokenizer.encode_with_offsets(text)
    assert len(ids) < len(text)  # merges: fewer tokens than characters
    loaded = CHAR_LSTM_BACKEND.load(str(run_dir), settings)
    assert (loaded["tokenizer"].kind, loaded["tokenizer_id"]) == ("bpe", "bpe-test")
    outcome = CHAR_LSTM_BACKEND.score(
        prepared=loaded,
        cfg=make_score_config(text=text, detail_level="per_char"),
        settings=settings,
    )
    per_token = outcome["per_token"]
    assert per_token is not None and outcome["num_tokens"] == len(ids)
    assert [entry["token"] for entry in per_token] == [text[a:b] for a, b in spans]
    assert [(entry.get("start"), entry.get("end")) for entry in per_token] == spans
    generated = CHAR_LSTM_BACKEND.generate(
        prepared=loaded,
        cfg=make_generate_config(prompt_text="To be", max_new_tokens=5, seed=1),
        settings=settings,
    )
    assert generated["outputs"][0].startswith("To be")


def test_a_retried_train_resumes_from_the_latest_checkpoint(
    settings: Settings, corpus_path: Path
) -> None:
    _, straight, _ = _train(settings, corpus_path, "straight")
    cfg = _cfg(corpus_path)
    run_dir = settings["artifacts_root"] / "runs" / "retried"
    prepared = CHAR_LSTM_BACKEND.prepare(cfg, settings, tokenizer=_tokenizer())
    stop_after = iter(range(1_000))
    callbacks: TrainingCallbacks = {
        "heartbeat": lambda _: None,
        "cancelled": lambda: next(stop_after) >= 15,
        "progress": None,
    }
    with pytest.raises(ModelTrainerError) as caught:
        CHAR_LSTM_BACKEND.train(
            cfg,
            settings,
            corpus=read_corpus(cfg["corpus_path"], settings),
            run_dir=str(run_dir),
            prepared=prepared,
            callbacks=callbacks,
        )
    assert caught.value.code == "TRAINING_CANCELLED"
    fresh = CHAR_LSTM_BACKEND.prepare(cfg, settings, tokenizer=_tokenizer())
    resumed = CHAR_LSTM_BACKEND.train(
        cfg,
        settings,
        corpus=read_corpus(cfg["corpus_path"], settings),
        run_dir=str(run_dir),
        prepared=fresh,
        callbacks=_callbacks([]),
    )
    assert resumed["resumed_from_step"] == 15
    assert resumed["steps"] == straight["steps"]
    assert resumed["val_loss"] == straight["val_loss"]
    a = CHAR_LSTM_BACKEND.load(str(settings["artifacts_root"] / "runs" / "straight"), settings)
    b = CHAR_LSTM_BACKEND.load(str(run_dir), settings)
    for p, q in zip(
        as_char_lstm(a["model"]).parameters(), as_char_lstm(b["model"]).parameters(), strict=True
    ):
        assert torch.equal(p, q)


def test_evaluate_on_the_validation_split_and_on_all_text(
    settings: Settings, corpus_path: Path, trained: tuple[PreparedLMModel, TrainOutcome, Path]
) -> None:
    prepared, outcome, _ = trained
    val = CHAR_LSTM_BACKEND.evaluate(
        prepared=prepared,
        cfg=make_eval_config(corpus_path=str(corpus_path), max_seq_len=32, batch_size=8),
        settings=settings,
    )
    # the loop evaluated the same split at the end of training
    assert val["loss"] == pytest.approx(outcome["val_loss"])
    everything = CHAR_LSTM_BACKEND.evaluate(
        prepared=prepared,
        cfg=make_eval_config(
            corpus_path=str(corpus_path), split="all", max_seq_len=32, batch_size=8, max_batches=3
        ),
        settings=settings,
    )
    assert everything["tokens"] == 3 * 8 * 32
    assert everything["perplexity"] == pytest.approx(torch.tensor(everything["loss"]).exp().item())


def test_per_char_score_has_one_entry_per_character_with_sorted_alternatives(
    settings: Settings, trained: tuple[PreparedLMModel, TrainOutcome, Path]
) -> None:
    prepared, _, _ = trained
    text = "To be, or not to be—ü"
    outcome = CHAR_LSTM_BACKEND.score(
        prepared=prepared,
        cfg=make_score_config(text=text, detail_level="per_char", top_k=4),
        settings=settings,
    )
    per_token = outcome["per_token"]
    assert per_token is not None
    assert [entry["token"] for entry in per_token] == list(text)
    assert [(entry.get("start"), entry.get("end")) for entry in per_token] == [
        (i, i + 1) for i in range(len(text))
    ]
    assert outcome["num_tokens"] == len(text)
    for entry in per_token:
        probs = [alt["prob"] for alt in entry["top_k"]]
        assert len(probs) == 4
        assert probs == sorted(probs, reverse=True)
        assert 0.0 < entry["prob"] <= 1.0
        assert entry["surprisal"] == pytest.approx(
            -torch.tensor(entry["prob"]).log2().item(), rel=1e-4
        )
    mean_nll = sum(-torch.tensor(e["prob"]).log().item() for e in per_token) / len(text)
    assert outcome["loss"] == pytest.approx(mean_nll, rel=1e-4)
    summary = CHAR_LSTM_BACKEND.score(
        prepared=prepared, cfg=make_score_config(text=text), settings=settings
    )
    assert summary["per_token"] is None
    assert summary["loss"] == pytest.approx(outcome["loss"])


def test_score_reads_a_path_under_the_data_root_and_rejects_empty_text(
    settings: Settings, trained: tuple[PreparedLMModel, TrainOutcome, Path]
) -> None:
    prepared, _, _ = trained
    (settings["data_root"] / "s.txt").write_text("To be")
    from_file = CHAR_LSTM_BACKEND.score(
        prepared=prepared,
        cfg=make_score_config(path=str(settings["data_root"] / "s.txt"), detail_level="per_char"),
        settings=settings,
    )
    assert from_file["num_tokens"] == 5
    assert from_file["per_token"] is not None and len(from_file["per_token"][0]["top_k"]) == 5
    with pytest.raises(ModelTrainerError) as empty:
        CHAR_LSTM_BACKEND.score(
            prepared=prepared, cfg=make_score_config(text=""), settings=settings
        )
    assert empty.value.code == "INVALID_CONFIG"
    with pytest.raises(ModelTrainerError) as missing:
        CHAR_LSTM_BACKEND.score(
            prepared=prepared,
            cfg=make_score_config(path=str(settings["data_root"] / "nope.txt")),
            settings=settings,
        )
    assert missing.value.code == "CORPUS_NOT_FOUND"


def test_generate_with_the_same_seed_gives_the_same_text(
    settings: Settings, trained: tuple[PreparedLMModel, TrainOutcome, Path]
) -> None:
    prepared, _, _ = trained
    cfg = make_generate_config(
        prompt_text="To be", max_new_tokens=40, seed=7, num_return_sequences=3, top_k=10, top_p=0.9
    )
    first = CHAR_LSTM_BACKEND.generate(prepared=prepared, cfg=cfg, settings=settings)
    second = CHAR_LSTM_BACKEND.generate(prepared=prepared, cfg=cfg, settings=settings)
    assert first == second
    assert len(first["outputs"]) == 3
    assert all(text.startswith("To be") for text in first["outputs"])
    assert len(set(first["outputs"])) > 1  # sequences sample independently
    other = CHAR_LSTM_BACKEND.generate(prepared=prepared, cfg={**cfg, "seed": 8}, settings=settings)
    assert other["outputs"] != first["outputs"]


def test_batched_generation_matches_one_sequence_fed_token_by_token(
    settings: Settings, trained: tuple[PreparedLMModel, TrainOutcome, Path]
) -> None:
    """The carried state gives exactly what recomputing the whole prefix would (greedy)."""
    prepared, _, _ = trained
    cfg = make_generate_config(
        prompt_text="Or to", max_new_tokens=25, top_k=1, seed=0, stop_on_eos=False
    )
    out = CHAR_LSTM_BACKEND.generate(prepared=prepared, cfg=cfg, settings=settings)
    model = as_char_lstm(prepared["model"])
    tokenizer = prepared["tokenizer"]
    ids = [prepared["eos_id"], *tokenizer.encode("Or to")]
    with torch.no_grad():
        for _ in range(25):
            logits = model(torch.tensor([ids]))
            ids.append(int(logits[0, -1].argmax()))
    assert out["outputs"] == ["Or to" + tokenizer.decode(ids[6:])]
    assert out["new_tokens"] == [25]


def test_generation_stops_each_sequence_at_eos(
    settings: Settings, trained: tuple[PreparedLMModel, TrainOutcome, Path]
) -> None:
    prepared, _, _ = trained
    model = as_char_lstm(prepared["model"])
    with torch.no_grad():  # make eos the only likely token after any input
        model.head.bias.fill_(-100.0)
        model.head.bias[prepared["eos_id"]] = 100.0
    cfg = make_generate_config(prompt_text="To", max_new_tokens=10, seed=1, num_return_sequences=2)
    out = CHAR_LSTM_BACKEND.generate(prepared=prepared, cfg=cfg, settings=settings)
    assert out == {"outputs": ["To", "To"], "new_tokens": [0, 0], "finished_on_eos": [True, True]}
    keep_going = CHAR_LSTM_BACKEND.generate(
        prepared=prepared, cfg={**cfg, "stop_on_eos": False}, settings=settings
    )
    assert keep_going["new_tokens"] == [10, 10]
    assert keep_going["finished_on_eos"] == [False, False]


def test_a_foreign_model_is_refused(settings: Settings, corpus_path: Path) -> None:
    with pytest.raises(ModelTrainerError) as caught:
        as_char_lstm(
            GPT2_BACKEND.prepare(_cfg(corpus_path), settings, tokenizer=_tokenizer())["model"]
        )
    assert caught.value.code == "MODEL_INCOMPATIBLE"
    assert isinstance(
        as_char_lstm(
            CharLSTMModel(
                {
                    "model_family": "char_lstm",
                    "model_size": "tiny",
                    "vocab_size": 5,
                    "max_seq_len": 4,
                    "embed_dim": 2,
                    "hidden_dim": 2,
                    "num_layers": 1,
                    "dropout": 0.0,
                }
            )
        ),
        CharLSTMModel,
    )
