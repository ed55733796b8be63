"""Measure a GPT-2's loss on a corpus."""

from __future__ import annotations

from model_trainer.backends.causal_lm import evaluate_causal_lm
from model_trainer.backends.gpt2.model import as_gpt2
from model_trainer.contracts.model import EvalConfig, EvalOutcome, PreparedLMModel
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings


def evaluate_gpt2(prepared: PreparedLMModel, cfg: EvalConfig, settings: Settings) -> EvalOutcome:
    model = as_gpt2(prepared["model"])
    if cfg["max_seq_len"] > model.context:
        raise ModelTrainerError(
            "INVALID_CONFIG",
            f"max_seq_len must be <= {model.context} (this model's context), "
            f"got {cfg['max_seq_len']}",
            details={"field": "max_seq_len"},
        )
    return evaluate_causal_lm(prepared, model, cfg, settings)
