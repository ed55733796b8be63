"""Measure a char-LSTM's loss on a corpus."""

from __future__ import annotations

from model_trainer.backends.causal_lm import evaluate_causal_lm
from model_trainer.backends.char_lstm.model import as_char_lstm
from model_trainer.contracts.model import EvalConfig, EvalOutcome, PreparedLMModel
from model_trainer.settings import Settings


def evaluate_char_lstm(
    prepared: PreparedLMModel, cfg: EvalConfig, settings: Settings
) -> EvalOutcome:
    return evaluate_causal_lm(prepared, as_char_lstm(prepared["model"]), cfg, settings)
