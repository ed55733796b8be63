"""Validators run once when a config is built; each failure names the field and its range."""

from __future__ import annotations

import math

from model_trainer.contracts.model import (
    MODEL_FAMILIES,
    EvalConfig,
    GenerateConfig,
    ModelFamily,
    ScoreConfig,
)
from model_trainer.contracts.tokenizer import (
    MAX_VOCAB_SIZE,
    MIN_BPE_VOCAB_SIZE,
    MIN_CHAR_VOCAB_SIZE,
    TOKENIZER_ID,
    TokenizerTrainConfig,
)
from model_trainer.errors import ModelTrainerError, quoted


def invalid(field: str, rule: str, value: object) -> ModelTrainerError:
    return ModelTrainerError(
        "INVALID_CONFIG",
        f"{field} must be {rule}, got {quoted(value)}",
        details={"field": field},
    )


def at_least(field: str, value: int, minimum: int) -> None:
    if value < minimum:
        raise invalid(field, f">= {minimum}", value)


def positive(field: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0.0):
        raise invalid(field, "a finite number > 0", value)


def fraction(field: str, value: float, *, low_open: bool, high_open: bool) -> None:
    above = value > 0.0 if low_open else value >= 0.0
    below = value < 1.0 if high_open else value <= 1.0
    if not (above and below):
        low = "(" if low_open else "["
        high = ")" if high_open else "]"
        raise invalid(field, f"in {low}0, 1{high}", value)


def parse_model_family(value: str) -> ModelFamily:
    """Narrow a requested family name to a known one."""
    for family in MODEL_FAMILIES:
        if family == value:
            return family
    raise ModelTrainerError(
        "UNKNOWN_MODEL_FAMILY",
        f"model_family must be one of {', '.join(MODEL_FAMILIES)}, got {quoted(value)}",
        details={"field": "model_family"},
    )


def validate_eval_config(cfg: EvalConfig) -> None:
    fraction("val_fraction", cfg["val_fraction"], low_open=True, high_open=True)
    at_least("max_seq_len", cfg["max_seq_len"], 1)
    at_least("batch_size", cfg["batch_size"], 1)
    if cfg["max_batches"] is not None:
        at_least("max_batches", cfg["max_batches"], 1)


def validate_score_config(cfg: ScoreConfig) -> None:
    if cfg["text"] is None and cfg["path"] is None:
        raise invalid("text", "given when path is not", None)
    if cfg["text"] is not None and cfg["path"] is not None:
        raise invalid("path", "omitted when text is given", cfg["path"])
    if cfg["top_k"] is not None:
        at_least("top_k", cfg["top_k"], 1)


def validate_generate_config(cfg: GenerateConfig) -> None:
    if cfg["prompt_text"] is None and cfg["prompt_path"] is None:
        raise invalid("prompt_text", "given when prompt_path is not", None)
    if cfg["prompt_text"] is not None and cfg["prompt_path"] is not None:
        raise invalid("prompt_path", "omitted when prompt_text is given", cfg["prompt_path"])
    at_least("max_new_tokens", cfg["max_new_tokens"], 1)
    positive("temperature", cfg["temperature"])
    at_least("top_k", cfg["top_k"], 0)
    fraction("top_p", cfg["top_p"], low_open=True, high_open=False)
    at_least("num_return_sequences", cfg["num_return_sequences"], 1)


def validate_tokenizer_id(tokenizer_id: str) -> None:
    """Ids name directories, so their alphabet keeps them inside the tokenizer store."""
    if not TOKENIZER_ID.fullmatch(tokenizer_id):
        raise invalid("tokenizer_id", f"matching {TOKENIZER_ID.pattern}", tokenizer_id)


def validate_tokenizer_train_config(cfg: TokenizerTrainConfig) -> None:
    """BPE needs room for every byte and the specials; a char vocabulary for one character."""
    validate_tokenizer_id(cfg["tokenizer_id"])
    minimum = MIN_BPE_VOCAB_SIZE if cfg["kind"] == "bpe" else MIN_CHAR_VOCAB_SIZE
    if not minimum <= cfg["vocab_size"] <= MAX_VOCAB_SIZE:
        rule = f"in [{minimum}, {MAX_VOCAB_SIZE}] for kind {cfg['kind']}"
        raise invalid("vocab_size", rule, cfg["vocab_size"])
