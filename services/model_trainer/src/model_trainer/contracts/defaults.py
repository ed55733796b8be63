"""Build validated configs with the defaults users get when they leave a field out."""

from __future__ import annotations

from model_trainer.contracts.model import (
    DetailLevel,
    EvalConfig,
    EvalSplit,
    GenerateConfig,
    ScoreConfig,
)
from model_trainer.contracts.tokenizer import (
    DEFAULT_BPE_VOCAB_SIZE,
    MAX_VOCAB_SIZE,
    TokenizerKind,
    TokenizerTrainConfig,
)
from model_trainer.contracts.validators import (
    validate_eval_config,
    validate_generate_config,
    validate_score_config,
    validate_tokenizer_train_config,
)


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
