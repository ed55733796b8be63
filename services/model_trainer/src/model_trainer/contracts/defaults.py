"""Build validated configs with the defaults users get when they leave a field out."""

from __future__ import annotations

from model_trainer.contracts.model import (
    DetailLevel,
    DeviceChoice,
    EvalConfig,
    EvalSplit,
    GenerateConfig,
    LRSchedule,
    ModelTrainConfig,
    Precision,
    ScoreConfig,
)
from model_trainer.contracts.tokenizer import (
    DEFAULT_BPE_VOCAB_SIZE,
    MAX_VOCAB_SIZE,
    TokenizerKind,
    TokenizerTrainConfig,
)
from model_trainer.contracts.validators import (
    parse_model_family,
    validate_eval_config,
    validate_generate_config,
    validate_model_train_config,
    validate_score_config,
    validate_tokenizer_train_config,
)


def make_train_config(
    *,
    model_family: str,
    model_size: str,
    corpus_path: str,
    max_seq_len: int = 128,
    num_epochs: int = 1,
    batch_size: int = 32,
    learning_rate: float = 3e-3,
    seed: int = 0,
    device: DeviceChoice = "auto",
    precision: Precision = "auto",
    max_steps: int | None = None,
    time_budget_s: float | None = None,
    val_fraction: float = 0.1,
    grad_clip: float | None = 1.0,
    grad_accum_steps: int = 1,
    weight_decay: float = 0.0,
    lr_schedule: LRSchedule = "cosine",
    warmup_steps: int = 0,
    min_lr_ratio: float = 0.1,
    log_every_steps: int = 10,
    eval_every_steps: int | None = None,
    eval_max_batches: int = 50,
    checkpoint_every_steps: int | None = 200,
    keep_checkpoints: int = 2,
    compile: bool = False,
    init_from: str | None = None,
) -> ModelTrainConfig:
    cfg: ModelTrainConfig = {
        "model_family": parse_model_family(model_family),
        "model_size": model_size,
        "max_seq_len": max_seq_len,
        "num_epochs": num_epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "corpus_path": corpus_path,
        "seed": seed,
        "device": device,
        "precision": precision,
        "max_steps": max_steps,
        "time_budget_s": time_budget_s,
        "val_fraction": val_fraction,
        "grad_clip": grad_clip,
        "grad_accum_steps": grad_accum_steps,
        "weight_decay": weight_decay,
        "lr_schedule": lr_schedule,
        "warmup_steps": warmup_steps,
        "min_lr_ratio": min_lr_ratio,
        "log_every_steps": log_every_steps,
        "eval_every_steps": eval_every_steps,
        "eval_max_batches": eval_max_batches,
        "checkpoint_every_steps": checkpoint_every_steps,
        "keep_checkpoints": keep_checkpoints,
    }
    # Optional features are left out when off, so a default config is the same dict as before.
    if compile:
        cfg["compile"] = True
    if init_from is not None:
        cfg["init_from"] = init_from
    validate_model_train_config(cfg)
    return cfg


def make_eval_config(
    *,
    corpus_path: str,
    split: EvalSplit = "validation",
    val_fraction: float = 0.1,
    max_seq_len: int = 128,
    batch_size: int = 32,
    max_batches: int | None = None,
) -> EvalConfig:
    cfg: EvalConfig = {
        "corpus_path": corpus_path,
        "split": split,
        "val_fraction": val_fraction,
        "max_seq_len": max_seq_len,
        "batch_size": batch_size,
        "max_batches": max_batches,
    }
    validate_eval_config(cfg)
    return cfg


def make_score_config(
    *,
    text: str | None = None,
    path: str | None = None,
    detail_level: DetailLevel = "summary",
    top_k: int | None = None,
    seed: int | None = None,
) -> ScoreConfig:
    cfg: ScoreConfig = {
        "text": text,
        "path": path,
        "detail_level": detail_level,
        "top_k": top_k,
        "seed": seed,
    }
    validate_score_config(cfg)
    return cfg


def make_generate_config(
    *,
    prompt_text: str | None = None,
    prompt_path: str | None = None,
    max_new_tokens: int = 100,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    stop_on_eos: bool = True,
    seed: int | None = None,
    num_return_sequences: int = 1,
) -> GenerateConfig:
    cfg: GenerateConfig = {
        "prompt_text": prompt_text,
        "prompt_path": prompt_path,
        "max_new_tokens": max_new_tokens,
        "temperature": temperature,
        "top_k": top_k,
        "top_p": top_p,
        "stop_on_eos": stop_on_eos,
        "seed": seed,
        "num_return_sequences": num_return_sequences,
    }
    validate_generate_config(cfg)
    return cfg


def make_tokenizer_config(
    *,
    corpus_path: str,
    tokenizer_id: str,
    kind: TokenizerKind = "bpe",
    vocab_size: int | None = None,
) -> TokenizerTrainConfig:
    """Without a size, bpe gets DEFAULT_BPE_VOCAB_SIZE and char keeps every character of its
    corpus (MAX_VOCAB_SIZE is more than Unicode has assigned)."""
    if vocab_size is None:
        vocab_size = DEFAULT_BPE_VOCAB_SIZE if kind == "bpe" else MAX_VOCAB_SIZE
    cfg: TokenizerTrainConfig = {
        "kind": kind,
        "corpus_path": corpus_path,
        "tokenizer_id": tokenizer_id,
        "vocab_size": vocab_size,
    }
    validate_tokenizer_train_config(cfg)
    return cfg
