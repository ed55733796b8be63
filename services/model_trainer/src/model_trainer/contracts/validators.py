"""Validators run once when a config is built; each failure names the field and its range."""

from __future__ import annotations

import math

from model_trainer.contracts.jobs import QUEUE_FOR_TYPE, QueueName
from model_trainer.contracts.model import (
    MODEL_FAMILIES,
    EvalConfig,
    GenerateConfig,
    ModelFamily,
    ModelTrainConfig,
    ScoreConfig,
)
from model_trainer.contracts.tokenizer import (
    MAX_VOCAB_SIZE,
    MIN_BPE_VOCAB_SIZE,
    MIN_CHAR_VOCAB_SIZE,
    TOKENIZER_ID,
    TokenizerTrainConfig,
)
from model_trainer.errors import ModelTrainerError


def _invalid(field: str, rule: str, value: object) -> ModelTrainerError:
    return ModelTrainerError(
        "INVALID_CONFIG",
        f"{field} must be {rule}, got {value!r}",
        details={"field": field},
    )


def _at_least(field: str, value: int, minimum: int) -> None:
    if value < minimum:
        raise _invalid(field, f">= {minimum}", value)


def _positive(field: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0.0):
        raise _invalid(field, "a finite number > 0", value)


def _fraction(field: str, value: float, *, low_open: bool, high_open: bool) -> None:
    above = value > 0.0 if low_open else value >= 0.0
    below = value < 1.0 if high_open else value <= 1.0
    if not (above and below):
        low = "(" if low_open else "["
        high = ")" if high_open else "]"
        raise _invalid(field, f"in {low}0, 1{high}", value)


def parse_model_family(value: str) -> ModelFamily:
    """Narrow a requested family name to a known one."""
    for family in MODEL_FAMILIES:
        if family == value:
            return family
    raise ModelTrainerError(
        "UNKNOWN_MODEL_FAMILY",
        f"model_family must be one of {', '.join(MODEL_FAMILIES)}, got {value!r}",
        details={"field": "model_family"},
    )


def validate_model_train_config(cfg: ModelTrainConfig) -> None:
    """Reject any value the training loop could not honour."""
    parse_model_family(cfg["model_family"])
    _at_least("max_seq_len", cfg["max_seq_len"], 1)
    _at_least("num_epochs", cfg["num_epochs"], 1)
    _at_least("batch_size", cfg["batch_size"], 1)
    _positive("learning_rate", cfg["learning_rate"])
    if cfg["max_steps"] is not None:
        _at_least("max_steps", cfg["max_steps"], 1)
    if cfg["time_budget_s"] is not None:
        _positive("time_budget_s", cfg["time_budget_s"])
    _fraction("val_fraction", cfg["val_fraction"], low_open=False, high_open=True)
    if cfg["grad_clip"] is not None:
        _positive("grad_clip", cfg["grad_clip"])
    _at_least("grad_accum_steps", cfg["grad_accum_steps"], 1)
    if not (math.isfinite(cfg["weight_decay"]) and cfg["weight_decay"] >= 0.0):
        raise _invalid("weight_decay", "a finite number >= 0", cfg["weight_decay"])
    _at_least("warmup_steps", cfg["warmup_steps"], 0)
    _fraction("min_lr_ratio", cfg["min_lr_ratio"], low_open=False, high_open=False)
    _at_least("log_every_steps", cfg["log_every_steps"], 1)
    if cfg["eval_every_steps"] is not None:
        _at_least("eval_every_steps", cfg["eval_every_steps"], 1)
    _at_least("eval_max_batches", cfg["eval_max_batches"], 1)
    if cfg["checkpoint_every_steps"] is not None:
        _at_least("checkpoint_every_steps", cfg["checkpoint_every_steps"], 1)
    _at_least("keep_checkpoints", cfg["keep_checkpoints"], 1)


def validate_eval_config(cfg: EvalConfig) -> None:
    _fraction("val_fraction", cfg["val_fraction"], low_open=True, high_open=True)
    _at_least("max_seq_len", cfg["max_seq_len"], 1)
    _at_least("batch_size", cfg["batch_size"], 1)
    if cfg["max_batches"] is not None:
        _at_least("max_batches", cfg["max_batches"], 1)


def validate_score_config(cfg: ScoreConfig) -> None:
    if cfg["text"] is None and cfg["path"] is None:
        raise _invalid("text", "given when path is not", None)
    if cfg["text"] is not None and cfg["path"] is not None:
        raise _invalid("path", "omitted when text is given", cfg["path"])
    if cfg["top_k"] is not None:
        _at_least("top_k", cfg["top_k"], 1)


def validate_generate_config(cfg: GenerateConfig) -> None:
    if cfg["prompt_text"] is None and cfg["prompt_path"] is None:
        raise _invalid("prompt_text", "given when prompt_path is not", None)
    if cfg["prompt_text"] is not None and cfg["prompt_path"] is not None:
        raise _invalid("prompt_path", "omitted when prompt_text is given", cfg["prompt_path"])
    _at_least("max_new_tokens", cfg["max_new_tokens"], 1)
    _positive("temperature", cfg["temperature"])
    _at_least("top_k", cfg["top_k"], 0)
    _fraction("top_p", cfg["top_p"], low_open=True, high_open=False)
    _at_least("num_return_sequences", cfg["num_return_sequences"], 1)


def parse_queue(value: str) -> QueueName:
    """Narrow a queue name given on the command line to one the service has."""
    for queue in QUEUE_FOR_TYPE.values():
        if queue == value:
            return queue
    raise ModelTrainerError(
        "INVALID_CONFIG",
        f"queue must be one of train, infer, got {value!r}",
        details={"field": "queues"},
    )


def validate_tokenizer_id(tokenizer_id: str) -> None:
    """Ids name directories, so their alphabet keeps them inside the tokenizer store."""
    if not TOKENIZER_ID.fullmatch(tokenizer_id):
        raise _invalid("tokenizer_id", f"matching {TOKENIZER_ID.pattern}", tokenizer_id)


def validate_tokenizer_train_config(cfg: TokenizerTrainConfig) -> None:
    """BPE needs room for every byte and the specials; a char vocabulary for one character."""
    validate_tokenizer_id(cfg["tokenizer_id"])
    minimum = MIN_BPE_VOCAB_SIZE if cfg["kind"] == "bpe" else MIN_CHAR_VOCAB_SIZE
    if not minimum <= cfg["vocab_size"] <= MAX_VOCAB_SIZE:
        rule = f"in [{minimum}, {MAX_VOCAB_SIZE}] for kind {cfg['kind']}"
        raise _invalid("vocab_size", rule, cfg["vocab_size"])
