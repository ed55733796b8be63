"""Validators run once when a config is built; each failure names the field and its range."""

from __future__ import annotations

import math

from model_trainer.contracts import limits as L
from model_trainer.contracts.model import (
    MODEL_FAMILIES,
    EvalConfig,
    GenerateConfig,
    ModelFamily,
    ScoreConfig,
)
from model_trainer.contracts.tokenizer import (
    MAX_BPE_VOCAB_SIZE,
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


def within(field: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise invalid(field, f"in [{low}, {high}]", value)


def positive(field: str, value: float, *, at_most: float) -> None:
    if not (math.isfinite(value) and 0.0 < value <= at_most):
        raise invalid(field, f"in (0, {at_most:g}]", value)


def optional_seed(field: str, value: int | None) -> None:
    if value is not None:
        within(field, value, 0, L.MAX_SEED)


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
    within("max_seq_len", cfg["max_seq_len"], 1, L.MAX_SEQ_LEN)
    within("batch_size", cfg["batch_size"], 1, L.MAX_BATCH_SIZE)
    if cfg["max_batches"] is not None:
        within("max_batches", cfg["max_batches"], 1, L.MAX_EVAL_BATCHES)


def validate_score_config(cfg: ScoreConfig) -> None:
    if cfg["text"] is None and cfg["path"] is None:
        raise invalid("text", "given when path is not", None)
    if cfg["text"] is not None and cfg["path"] is not None:
        raise invalid("path", "omitted when text is given", cfg["path"])
    if cfg["top_k"] is not None:
        within("top_k", cfg["top_k"], 1, L.MAX_SCORE_TOP_K)
    optional_seed("seed", cfg["seed"])


def validate_generate_config(cfg: GenerateConfig) -> None:
    if cfg["prompt_text"] is None and cfg["prompt_path"] is None:
        raise invalid("prompt_text", "given when prompt_path is not", None)
    if cfg["prompt_text"] is not None and cfg["prompt_path"] is not None:
        raise invalid("prompt_path", "omitted when prompt_text is given", cfg["prompt_path"])
    within("max_new_tokens", cfg["max_new_tokens"], 1, L.MAX_NEW_TOKENS)
    positive("temperature", cfg["temperature"], at_most=L.MAX_TEMPERATURE)
    within("top_k", cfg["top_k"], 0, L.MAX_SAMPLE_TOP_K)
    fraction("top_p", cfg["top_p"], low_open=True, high_open=False)
    optional_seed("seed", cfg["seed"])
    within("num_return_sequences", cfg["num_return_sequences"], 1, L.MAX_RETURN_SEQUENCES)


def validate_tokenizer_id(tokenizer_id: str) -> None:
    """Ids name directories, so their alphabet keeps them inside the tokenizer store."""
    if not TOKENIZER_ID.fullmatch(tokenizer_id):
        raise invalid("tokenizer_id", f"matching {TOKENIZER_ID.pattern}", tokenizer_id)


def validate_tokenizer_train_config(cfg: TokenizerTrainConfig) -> None:
    """BPE needs room for every byte and the specials; a char vocabulary for one character."""
    validate_tokenizer_id(cfg["tokenizer_id"])
    bpe = cfg["kind"] == "bpe"
    low, high = (
        (MIN_BPE_VOCAB_SIZE, MAX_BPE_VOCAB_SIZE) if bpe else (MIN_CHAR_VOCAB_SIZE, MAX_VOCAB_SIZE)
    )
    if not low <= cfg["vocab_size"] <= high:
        raise invalid("vocab_size", f"in [{low}, {high}] for kind {cfg['kind']}", cfg["vocab_size"])
