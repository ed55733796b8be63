"""A family's backend by name; its module (and torch) is imported on first use, so code that
only names families (the API, the CLI's client commands) never loads torch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from model_trainer.contracts.model import ModelFamily

if TYPE_CHECKING:
    from model_trainer.backends.causal_lm import CausalLMBackend


def get_backend(family: ModelFamily) -> CausalLMBackend:
    if family == "char_lstm":
        from model_trainer.backends.char_lstm import BACKEND as CHAR_LSTM

        return CHAR_LSTM
    from model_trainer.backends.gpt2 import BACKEND as GPT2

    return GPT2
