"""Build a fresh char-LSTM for a tokenizer, seeded so the same config gives the same weights."""

from __future__ import annotations

import torch

from model_trainer.backends.char_lstm.config import CharLSTMModelConfig, CharLSTMTrainConfig
from model_trainer.backends.char_lstm.model import CharLSTMModel
from model_trainer.contracts.model import PreparedLMModel
from model_trainer.contracts.tokenizer import TokenizerHandle
from model_trainer.settings import Settings


def prepared_from(model: CharLSTMModel, tokenizer: TokenizerHandle) -> PreparedLMModel:
    cfg = model.config
    return {
        "model": model,
        "model_family": "char_lstm",
        "model_size": cfg["model_size"],
        "tokenizer": tokenizer,
        "tokenizer_id": tokenizer.tokenizer_id,
        "eos_id": tokenizer.eos_id,
        "pad_id": tokenizer.pad_id,
        "max_seq_len": cfg["max_seq_len"],
        "tok_for_dataset": tokenizer,
    }


def prepare_char_lstm(
    cfg: CharLSTMTrainConfig, settings: Settings, tokenizer: TokenizerHandle
) -> PreparedLMModel:
    train = cfg["train"]
    model_cfg: CharLSTMModelConfig = {
        "model_family": "char_lstm",
        "model_size": train["model_size"],
        "vocab_size": tokenizer.vocab_size,
        "max_seq_len": train["max_seq_len"],
        **cfg["dims"],
    }
    torch.manual_seed(train["seed"])
    return prepared_from(CharLSTMModel(model_cfg), tokenizer)
