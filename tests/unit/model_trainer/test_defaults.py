"""The make_* builders: documented defaults, given values kept, and validation applied."""

import pytest

from model_trainer.contracts.defaults import (
    make_eval_config,
    make_generate_config,
    make_score_config,
    make_tokenizer_config,
)
from model_trainer.contracts.model import EvalConfig, GenerateConfig, ScoreConfig
from model_trainer.contracts.train_config import (
    FAMILY_TRAIN_DEFAULTS,
    TRAIN_DEFAULTS,
    ModelTrainConfig,
    make_train_config,
    train_defaults,
)
from model_trainer.errors import ModelTrainerError

# char_lstm's measured recipe (contracts/train_config.FAMILY_TRAIN_DEFAULTS).
LSTM_SEQ, LSTM_BATCH, LSTM_LR, LSTM_BETA2, LSTM_WARMUP, LSTM_FLOOR = 512, 16, 1.6e-2, 0.99, 50, 0.0


def test_train_defaults() -> None:
    expected: ModelTrainConfig = {
        "model_family": "char_lstm",
        "model_size": "tiny",
        "max_seq_len": 128,
        "num_epochs": 1,
        "batch_size": 32,
        "learning_rate": 3e-3,
        "corpus_path": "/data/c.txt",
        "seed": 0,
        "device": "auto",
        "precision": "auto",
        "max_steps": None,
        "time_budget_s": None,
        "val_fraction": 0.1,
        "grad_clip": 1.0,
        "grad_accum_steps": 1,
        "weight_decay": 0.0,
        "beta2": 0.999,
        "lr_schedule": "cosine",
        "warmup_steps": 0,
        "min_lr_ratio": 0.1,
        "log_every_steps": 10,
        "eval_every_steps": None,
        "eval_max_batches": 50,
        "checkpoint_every_steps": 200,
        "keep_checkpoints": 2,
        "compile": False,
        "init_from": None,
        "parent": None,
        "keep_best_checkpoints": 1,
        "early_stopping_patience": None,
        "early_stopping_min_delta": 0.0,
        "grad_norm_alert_max": 1000.0,
        "grad_norm_alert_min": 1e-8,
        "val_loss_spike_ratio": 0.2,
        "num_processes": 1,
    }
    cfg = make_train_config(model_family="char_lstm", model_size="tiny", corpus_path="/data/c.txt")
    assert cfg == expected


def test_train_keeps_every_given_value() -> None:
    cfg = make_train_config(
        model_family="char_lstm",
        model_size="small",
        corpus_path="/data/c.txt",
        options={
            **TRAIN_DEFAULTS,
            "max_seq_len": 64,
            "batch_size": 8,
            "learning_rate": 1e-2,
            "seed": 7,
            "device": "cpu",
            "precision": "fp32",
            "max_steps": 99,
            "val_fraction": 0.2,
            "grad_clip": None,
            "grad_accum_steps": 4,
            "weight_decay": 0.1,
            "lr_schedule": "constant",
            "warmup_steps": 5,
            "min_lr_ratio": 0.5,
            "log_every_steps": 3,
            "eval_every_steps": 11,
            "eval_max_batches": 6,
            "checkpoint_every_steps": None,
            "keep_checkpoints": 1,
        },
    )
    assert cfg["model_size"] == "small"
    assert (cfg["max_seq_len"], cfg["num_epochs"], cfg["batch_size"]) == (64, 1, 8)
    assert (cfg["learning_rate"], cfg["seed"], cfg["device"]) == (1e-2, 7, "cpu")
    assert (cfg["precision"], cfg["max_steps"], cfg["val_fraction"]) == ("fp32", 99, 0.2)
    assert (cfg["grad_clip"], cfg["grad_accum_steps"], cfg["weight_decay"]) == (None, 4, 0.1)
    assert (cfg["lr_schedule"], cfg["warmup_steps"], cfg["min_lr_ratio"]) == ("constant", 5, 0.5)
    assert (cfg["log_every_steps"], cfg["eval_every_steps"], cfg["eval_max_batches"]) == (3, 11, 6)
    assert (cfg["checkpoint_every_steps"], cfg["keep_checkpoints"]) == (None, 1)


def test_train_rejects_unknown_family() -> None:
    with pytest.raises(ModelTrainerError) as info:
        make_train_config(model_family="nope", model_size="tiny", corpus_path="/data/c.txt")
    assert info.value.code == "UNKNOWN_MODEL_FAMILY"
    assert info.value.details == {"field": "model_family"}


def test_train_validates() -> None:
    with pytest.raises(ModelTrainerError) as info:
        make_train_config(
            model_family="char_lstm",
            model_size="tiny",
            corpus_path="/data/c.txt",
            options={**TRAIN_DEFAULTS, "batch_size": 0},
        )
    assert info.value.code == "INVALID_CONFIG"
    assert info.value.details == {"field": "batch_size"}


def test_gpt2_keeps_the_shared_defaults() -> None:
    assert train_defaults("gpt2") == TRAIN_DEFAULTS
    assert FAMILY_TRAIN_DEFAULTS["gpt2"] == {
        "max_seq_len": 128,
        "batch_size": 32,
        "learning_rate": 3e-3,
        "beta2": 0.999,
        "warmup_steps": 0,
        "min_lr_ratio": 0.1,
        "precision": "auto",
    }


def test_char_lstm_defaults_are_its_measured_recipe() -> None:
    cfg = make_train_config(
        model_family="char_lstm",
        model_size="small",
        corpus_path="/data/c.txt",
        options=train_defaults("char_lstm"),
    )
    assert cfg == {
        **TRAIN_DEFAULTS,
        "max_seq_len": LSTM_SEQ,
        "batch_size": LSTM_BATCH,
        "learning_rate": LSTM_LR,
        "beta2": LSTM_BETA2,
        "warmup_steps": LSTM_WARMUP,
        "min_lr_ratio": LSTM_FLOOR,
        "precision": "bf16",
        "model_family": "char_lstm",
        "model_size": "small",
        "corpus_path": "/data/c.txt",
        "parent": None,
    }


def test_eval_defaults_and_values() -> None:
    expected: EvalConfig = {
        "corpus_path": "/data/c.txt",
        "split": "validation",
        "val_fraction": 0.1,
        "max_seq_len": 128,
        "batch_size": 32,
        "max_batches": None,
    }
    assert make_eval_config(corpus_path="/data/c.txt") == expected
    cfg = make_eval_config(
        corpus_path="/data/c.txt",
        split="all",
        val_fraction=0.5,
        max_seq_len=16,
        batch_size=2,
        max_batches=3,
    )
    assert (cfg["split"], cfg["val_fraction"], cfg["max_seq_len"]) == ("all", 0.5, 16)
    assert (cfg["batch_size"], cfg["max_batches"]) == (2, 3)


def test_eval_validates() -> None:
    with pytest.raises(ModelTrainerError) as info:
        make_eval_config(corpus_path="/data/c.txt", val_fraction=0.0)
    assert info.value.code == "INVALID_CONFIG"
    assert info.value.details == {"field": "val_fraction"}


def test_score_defaults_and_values() -> None:
    expected: ScoreConfig = {
        "text": "abc",
        "path": None,
        "detail_level": "summary",
        "top_k": None,
        "seed": None,
    }
    assert make_score_config(text="abc") == expected
    cfg = make_score_config(path="/data/c.txt", detail_level="per_char", top_k=3, seed=4)
    assert cfg == {
        "text": None,
        "path": "/data/c.txt",
        "detail_level": "per_char",
        "top_k": 3,
        "seed": 4,
    }


def test_score_validates() -> None:
    with pytest.raises(ModelTrainerError) as info:
        make_score_config()
    assert info.value.code == "INVALID_CONFIG"
    assert info.value.details == {"field": "text"}


def test_generate_defaults_and_values() -> None:
    expected: GenerateConfig = {
        "prompt_text": "To",
        "prompt_path": None,
        "max_new_tokens": 100,
        "temperature": 1.0,
        "top_k": 0,
        "top_p": 1.0,
        "stop_on_eos": True,
        "seed": None,
        "num_return_sequences": 1,
    }
    assert make_generate_config(prompt_text="To") == expected
    cfg = make_generate_config(
        prompt_path="/data/p.txt",
        max_new_tokens=5,
        temperature=0.5,
        top_k=2,
        top_p=0.5,
        stop_on_eos=False,
        seed=9,
        num_return_sequences=3,
    )
    assert cfg == {
        "prompt_text": None,
        "prompt_path": "/data/p.txt",
        "max_new_tokens": 5,
        "temperature": 0.5,
        "top_k": 2,
        "top_p": 0.5,
        "stop_on_eos": False,
        "seed": 9,
        "num_return_sequences": 3,
    }


def test_generate_validates() -> None:
    with pytest.raises(ModelTrainerError) as info:
        make_generate_config(prompt_text="To", temperature=0.0)
    assert info.value.code == "INVALID_CONFIG"
    assert info.value.details == {"field": "temperature"}


def test_tokenizer_defaults_per_kind() -> None:
    assert make_tokenizer_config(corpus_path="/data/c.txt", tokenizer_id="t") == {
        "kind": "bpe",
        "corpus_path": "/data/c.txt",
        "tokenizer_id": "t",
        "vocab_size": 8192,
    }
    char = make_tokenizer_config(corpus_path="/data/c.txt", tokenizer_id="c", kind="char")
    assert char["vocab_size"] == 1_000_000
    sized = make_tokenizer_config(corpus_path="/c", tokenizer_id="s", kind="char", vocab_size=50)
    assert sized["vocab_size"] == 50


def test_tokenizer_validates() -> None:
    with pytest.raises(ModelTrainerError) as info:
        make_tokenizer_config(corpus_path="/data/c.txt", tokenizer_id="t", vocab_size=10)
    assert (info.value.code, info.value.details) == ("INVALID_CONFIG", {"field": "vocab_size"})
