"""Every validator check: each bad value names its field, each boundary value passes."""

import math
import re
from typing import TypedDict

import pytest

from model_trainer.contracts.model import EvalConfig, GenerateConfig, ScoreConfig
from model_trainer.contracts.tokenizer import TokenizerKind, TokenizerTrainConfig
from model_trainer.contracts.train_config import ModelTrainConfig, validate_model_train_config
from model_trainer.contracts.validators import (
    parse_model_family,
    validate_eval_config,
    validate_generate_config,
    validate_score_config,
    validate_tokenizer_train_config,
)
from model_trainer.errors import ModelTrainerError

NAN = math.nan
INF = math.inf


class TrainOverrides(TypedDict, total=False):
    num_processes: int
    max_seq_len: int
    num_epochs: int
    batch_size: int
    learning_rate: float
    max_steps: int | None
    time_budget_s: float | None
    val_fraction: float
    grad_clip: float | None
    grad_accum_steps: int
    weight_decay: float
    beta2: float
    warmup_steps: int
    min_lr_ratio: float
    log_every_steps: int
    eval_every_steps: int | None
    eval_max_batches: int
    checkpoint_every_steps: int | None
    keep_checkpoints: int
    keep_best_checkpoints: int
    early_stopping_patience: int | None
    early_stopping_min_delta: float
    grad_norm_alert_max: float | None
    grad_norm_alert_min: float | None
    val_loss_spike_ratio: float | None


class EvalOverrides(TypedDict, total=False):
    val_fraction: float
    max_seq_len: int
    batch_size: int
    max_batches: int | None


class ScoreOverrides(TypedDict, total=False):
    text: str | None
    path: str | None
    top_k: int | None


class GenerateOverrides(TypedDict, total=False):
    prompt_text: str | None
    prompt_path: str | None
    max_new_tokens: int
    temperature: float
    top_k: int
    top_p: float
    num_return_sequences: int


BASE_TRAIN: ModelTrainConfig = {
    "model_family": "char_lstm",
    "model_size": "tiny",
    "max_seq_len": 32,
    "num_epochs": 1,
    "batch_size": 4,
    "learning_rate": 1e-3,
    "corpus_path": "/data/corpus.txt",
    "seed": 0,
    "device": "cpu",
    "precision": "auto",
    "max_steps": 10,
    "time_budget_s": None,
    "val_fraction": 0.1,
    "grad_clip": 1.0,
    "grad_accum_steps": 1,
    "weight_decay": 0.01,
    "beta2": 0.99,
    "lr_schedule": "cosine",
    "warmup_steps": 2,
    "min_lr_ratio": 0.1,
    "log_every_steps": 5,
    "eval_every_steps": 5,
    "eval_max_batches": 2,
    "checkpoint_every_steps": 5,
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

BASE_EVAL: EvalConfig = {
    "corpus_path": "/data/corpus.txt",
    "split": "validation",
    "val_fraction": 0.1,
    "max_seq_len": 32,
    "batch_size": 4,
    "max_batches": 3,
}

BASE_SCORE: ScoreConfig = {
    "text": "hello",
    "path": None,
    "detail_level": "summary",
    "top_k": 3,
    "seed": None,
}

BASE_GENERATE: GenerateConfig = {
    "prompt_text": "To",
    "prompt_path": None,
    "max_new_tokens": 10,
    "temperature": 0.8,
    "top_k": 5,
    "top_p": 0.9,
    "stop_on_eos": True,
    "seed": 1,
    "num_return_sequences": 1,
}

TRAIN_BAD: list[tuple[str, TrainOverrides]] = [
    ("num_processes", {"num_processes": 0}),
    ("num_processes", {"num_processes": 65}),
    ("batch_size", {"num_processes": 3, "batch_size": 4}),
    ("time_budget_s", {"num_processes": 2, "time_budget_s": 60.0}),
    ("max_seq_len", {"max_seq_len": 0}),
    ("max_seq_len", {"max_seq_len": -5}),
    ("num_epochs", {"num_epochs": 0}),
    ("batch_size", {"batch_size": 0}),
    ("learning_rate", {"learning_rate": 0.0}),
    ("learning_rate", {"learning_rate": -1e-3}),
    ("learning_rate", {"learning_rate": NAN}),
    ("learning_rate", {"learning_rate": INF}),
    ("learning_rate", {"learning_rate": -INF}),
    ("max_steps", {"max_steps": 0}),
    ("time_budget_s", {"time_budget_s": 0.0}),
    ("time_budget_s", {"time_budget_s": NAN}),
    ("val_fraction", {"val_fraction": -0.01}),
    ("val_fraction", {"val_fraction": 1.0}),
    ("val_fraction", {"val_fraction": NAN}),
    ("val_fraction", {"val_fraction": INF}),
    ("grad_clip", {"grad_clip": 0.0}),
    ("grad_clip", {"grad_clip": -1.0}),
    ("grad_clip", {"grad_clip": NAN}),
    ("grad_clip", {"grad_clip": INF}),
    ("grad_accum_steps", {"grad_accum_steps": 0}),
    ("weight_decay", {"weight_decay": -1e-9}),
    ("weight_decay", {"weight_decay": NAN}),
    ("weight_decay", {"weight_decay": INF}),
    ("beta2", {"beta2": 1.0}),
    ("beta2", {"beta2": -0.1}),
    ("beta2", {"beta2": NAN}),
    ("warmup_steps", {"warmup_steps": -1}),
    ("min_lr_ratio", {"min_lr_ratio": -0.1}),
    ("min_lr_ratio", {"min_lr_ratio": 1.01}),
    ("min_lr_ratio", {"min_lr_ratio": NAN}),
    ("min_lr_ratio", {"min_lr_ratio": -INF}),
    ("log_every_steps", {"log_every_steps": 0}),
    ("eval_every_steps", {"eval_every_steps": 0}),
    ("eval_max_batches", {"eval_max_batches": 0}),
    ("checkpoint_every_steps", {"checkpoint_every_steps": 0}),
    ("keep_checkpoints", {"keep_checkpoints": 0}),
    ("keep_best_checkpoints", {"keep_best_checkpoints": 0}),
    ("early_stopping_patience", {"early_stopping_patience": 2, "val_fraction": 0.0}),
    ("early_stopping_patience", {"early_stopping_patience": 0}),
    ("early_stopping_min_delta", {"early_stopping_min_delta": -0.5}),
    ("early_stopping_min_delta", {"early_stopping_min_delta": NAN}),
    ("grad_norm_alert_max", {"grad_norm_alert_max": 0.0}),
    ("grad_norm_alert_min", {"grad_norm_alert_min": INF}),
    ("grad_norm_alert_min", {"grad_norm_alert_min": 5.0, "grad_norm_alert_max": 5.0}),
    ("val_loss_spike_ratio", {"val_loss_spike_ratio": -1.0}),
]

TRAIN_GOOD: list[TrainOverrides] = [
    {"num_processes": 4, "batch_size": 4},
    {"num_processes": 1, "time_budget_s": 60.0, "max_steps": None},
    {
        "max_seq_len": 1,
        "num_epochs": 1,
        "batch_size": 1,
        "learning_rate": 1e-12,
        "max_steps": 1,
        "val_fraction": 0.0,
        "grad_clip": 1e-9,
        "grad_accum_steps": 1,
        "weight_decay": 0.0,
        "warmup_steps": 0,
        "min_lr_ratio": 0.0,
        "log_every_steps": 1,
        "eval_every_steps": 1,
        "eval_max_batches": 1,
        "checkpoint_every_steps": 1,
        "keep_checkpoints": 1,
    },
    {
        "max_steps": None,
        "time_budget_s": 0.5,
        "val_fraction": 0.999,
        "grad_clip": None,
        "min_lr_ratio": 1.0,
        "eval_every_steps": None,
        "checkpoint_every_steps": None,
    },
]

EVAL_BAD: list[tuple[str, EvalOverrides]] = [
    ("val_fraction", {"val_fraction": 0.0}),
    ("val_fraction", {"val_fraction": 1.0}),
    ("val_fraction", {"val_fraction": -0.5}),
    ("val_fraction", {"val_fraction": NAN}),
    ("val_fraction", {"val_fraction": INF}),
    ("max_seq_len", {"max_seq_len": 0}),
    ("batch_size", {"batch_size": 0}),
    ("max_batches", {"max_batches": 0}),
]

EVAL_GOOD: list[EvalOverrides] = [
    {"val_fraction": 1e-9, "max_seq_len": 1, "batch_size": 1, "max_batches": 1},
    {"val_fraction": 0.999, "max_batches": None},
]

SCORE_BAD: list[tuple[str, ScoreOverrides]] = [
    ("text", {"text": None, "path": None}),
    ("path", {"text": "hello", "path": "/data/x.txt"}),
    ("top_k", {"top_k": 0}),
    ("top_k", {"top_k": -1}),
]

SCORE_GOOD: list[ScoreOverrides] = [
    {"text": "hello", "path": None, "top_k": 1},
    {"text": None, "path": "/data/x.txt", "top_k": None},
]

GENERATE_BAD: list[tuple[str, GenerateOverrides]] = [
    ("prompt_text", {"prompt_text": None, "prompt_path": None}),
    ("prompt_path", {"prompt_text": "To", "prompt_path": "/data/p.txt"}),
    ("max_new_tokens", {"max_new_tokens": 0}),
    ("temperature", {"temperature": 0.0}),
    ("temperature", {"temperature": -1.0}),
    ("temperature", {"temperature": NAN}),
    ("temperature", {"temperature": INF}),
    ("top_k", {"top_k": -1}),
    ("top_p", {"top_p": 0.0}),
    ("top_p", {"top_p": 1.01}),
    ("top_p", {"top_p": NAN}),
    ("top_p", {"top_p": INF}),
    ("num_return_sequences", {"num_return_sequences": 0}),
]

GENERATE_GOOD: list[GenerateOverrides] = [
    {"max_new_tokens": 1, "temperature": 1e-6, "top_k": 0, "top_p": 1.0},
    {"prompt_text": None, "prompt_path": "/data/p.txt", "top_p": 1e-9, "num_return_sequences": 1},
    {"prompt_text": "", "prompt_path": None},
]


def _assert_invalid(info: pytest.ExceptionInfo[ModelTrainerError], field: str) -> None:
    assert info.value.code == "INVALID_CONFIG"
    assert info.value.http_status == 422
    assert info.value.details == {"field": field}
    assert info.value.message.startswith(f"{field} must be ")


@pytest.mark.parametrize(("field", "overrides"), TRAIN_BAD)
def test_train_config_rejects(field: str, overrides: TrainOverrides) -> None:
    cfg: ModelTrainConfig = {**BASE_TRAIN, **overrides}
    with pytest.raises(ModelTrainerError) as info:
        validate_model_train_config(cfg)
    _assert_invalid(info, field)


@pytest.mark.parametrize("overrides", [{}, *TRAIN_GOOD])
def test_train_config_accepts_boundaries(overrides: TrainOverrides) -> None:
    cfg: ModelTrainConfig = {**BASE_TRAIN, **overrides}
    validate_model_train_config(cfg)


@pytest.mark.parametrize(("field", "overrides"), EVAL_BAD)
def test_eval_config_rejects(field: str, overrides: EvalOverrides) -> None:
    cfg: EvalConfig = {**BASE_EVAL, **overrides}
    with pytest.raises(ModelTrainerError) as info:
        validate_eval_config(cfg)
    _assert_invalid(info, field)


@pytest.mark.parametrize("overrides", [{}, *EVAL_GOOD])
def test_eval_config_accepts_boundaries(overrides: EvalOverrides) -> None:
    cfg: EvalConfig = {**BASE_EVAL, **overrides}
    validate_eval_config(cfg)


@pytest.mark.parametrize(("field", "overrides"), SCORE_BAD)
def test_score_config_rejects(field: str, overrides: ScoreOverrides) -> None:
    cfg: ScoreConfig = {**BASE_SCORE, **overrides}
    with pytest.raises(ModelTrainerError) as info:
        validate_score_config(cfg)
    _assert_invalid(info, field)


@pytest.mark.parametrize("overrides", [{}, *SCORE_GOOD])
def test_score_config_accepts_boundaries(overrides: ScoreOverrides) -> None:
    cfg: ScoreConfig = {**BASE_SCORE, **overrides}
    validate_score_config(cfg)


@pytest.mark.parametrize(("field", "overrides"), GENERATE_BAD)
def test_generate_config_rejects(field: str, overrides: GenerateOverrides) -> None:
    cfg: GenerateConfig = {**BASE_GENERATE, **overrides}
    with pytest.raises(ModelTrainerError) as info:
        validate_generate_config(cfg)
    _assert_invalid(info, field)


@pytest.mark.parametrize("overrides", [{}, *GENERATE_GOOD])
def test_generate_config_accepts_boundaries(overrides: GenerateOverrides) -> None:
    cfg: GenerateConfig = {**BASE_GENERATE, **overrides}
    validate_generate_config(cfg)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"batch_size": 0}, "batch_size must be in [1, 4096], got 0"),
        ({"warmup_steps": -1}, "warmup_steps must be in [0, 10000000], got -1"),
        ({"learning_rate": NAN}, "learning_rate must be in (0, 10], got nan"),
        ({"learning_rate": 1e308}, "learning_rate must be in (0, 10], got 1e+308"),
        ({"weight_decay": -1.0}, "weight_decay must be in [0, 10], got -1.0"),
        ({"seed": 2**64}, "seed must be in [0, 4294967295], got 18446744073709551616"),
        ({"max_seq_len": 10_000_000}, "max_seq_len must be in [1, 8192], got 10000000"),
        ({"num_epochs": 10**9}, "num_epochs must be in [1, 1000], got 1000000000"),
        ({"max_steps": 20, "num_epochs": 2}, "num_epochs must be 1 (its default) when max_steps"),
        ({"val_fraction": 1.0}, "val_fraction must be in [0, 1), got 1.0"),
        ({"min_lr_ratio": 2.0}, "min_lr_ratio must be in [0, 1], got 2.0"),
    ],
)
def test_train_messages_name_the_allowed_range(overrides: TrainOverrides, message: str) -> None:
    cfg: ModelTrainConfig = {**BASE_TRAIN, **overrides}
    with pytest.raises(ModelTrainerError, match=re.escape(message)):
        validate_model_train_config(cfg)


def test_open_interval_messages_use_open_brackets() -> None:
    eval_cfg: EvalConfig = {**BASE_EVAL, "val_fraction": 0.0}
    with pytest.raises(ModelTrainerError) as eval_info:
        validate_eval_config(eval_cfg)
    assert eval_info.value.message == "val_fraction must be in (0, 1), got 0.0"
    generate_cfg: GenerateConfig = {**BASE_GENERATE, "top_p": 0.0}
    with pytest.raises(ModelTrainerError) as generate_info:
        validate_generate_config(generate_cfg)
    assert generate_info.value.message == "top_p must be in (0, 1], got 0.0"


def test_parse_model_family_accepts_known_family() -> None:
    assert parse_model_family("char_lstm") == "char_lstm"


@pytest.mark.parametrize("name", ["nope", "", "CHAR_LSTM", "char_lstm "])
def test_parse_model_family_rejects_unknown(name: str) -> None:
    with pytest.raises(ModelTrainerError) as info:
        parse_model_family(name)
    assert info.value.code == "UNKNOWN_MODEL_FAMILY"
    assert info.value.http_status == 400
    assert info.value.details == {"field": "model_family"}
    assert info.value.message == f"model_family must be one of char_lstm, gpt2, got {name!r}"


def _tokenizer_config(
    kind: TokenizerKind, vocab_size: int, tokenizer_id: str
) -> TokenizerTrainConfig:
    return {
        "kind": kind,
        "corpus_path": "/data/c.txt",
        "tokenizer_id": tokenizer_id,
        "vocab_size": vocab_size,
    }


@pytest.mark.parametrize(
    ("kind", "vocab_size", "tokenizer_id", "field"),
    [
        ("bpe", 258, "t", "vocab_size"),
        ("bpe", 1_000_001, "t", "vocab_size"),
        ("char", 3, "t", "vocab_size"),
        ("char", 1_000_001, "t", "vocab_size"),
        ("bpe", 300, "../up", "tokenizer_id"),
        ("bpe", 300, "", "tokenizer_id"),
        ("char", 300, "a b", "tokenizer_id"),
    ],
)
def test_tokenizer_config_rejects(
    kind: TokenizerKind, vocab_size: int, tokenizer_id: str, field: str
) -> None:
    with pytest.raises(ModelTrainerError) as info:
        validate_tokenizer_train_config(_tokenizer_config(kind, vocab_size, tokenizer_id))
    _assert_invalid(info, field)


@pytest.mark.parametrize(
    ("kind", "vocab_size"),
    [("bpe", 259), ("bpe", 131_072), ("char", 4), ("char", 1_000_000)],
)
def test_tokenizer_config_accepts_boundaries(kind: TokenizerKind, vocab_size: int) -> None:
    validate_tokenizer_train_config(_tokenizer_config(kind, vocab_size, "bpe-0123_x.y"))


def test_tokenizer_vocab_message_names_the_range_for_the_kind() -> None:
    with pytest.raises(ModelTrainerError) as info:
        validate_tokenizer_train_config(_tokenizer_config("bpe", 100, "t"))
    assert info.value.message == "vocab_size must be in [259, 131072] for kind bpe, got 100"


def test_monitoring_thresholds_may_be_switched_off() -> None:
    cfg: ModelTrainConfig = {
        **BASE_TRAIN,
        "grad_norm_alert_max": None,
        "grad_norm_alert_min": None,
        "val_loss_spike_ratio": None,
        "early_stopping_patience": 3,
    }
    validate_model_train_config(cfg)
