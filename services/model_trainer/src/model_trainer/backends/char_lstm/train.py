"""Train a char-LSTM through the shared loop."""

from __future__ import annotations

from model_trainer.backends.causal_lm import train_causal_lm
from model_trainer.backends.char_lstm.config import CharLSTMTrainConfig
from model_trainer.backends.char_lstm.io import save_char_lstm
from model_trainer.backends.char_lstm.model import as_char_lstm
from model_trainer.contracts.model import PreparedLMModel, TrainingCallbacks, TrainOutcome
from model_trainer.settings import Settings


def train_char_lstm(
    prepared: PreparedLMModel,
    cfg: CharLSTMTrainConfig,
    settings: Settings,
    run_dir: str,
    callbacks: TrainingCallbacks,
) -> TrainOutcome:
    module = as_char_lstm(prepared["model"])
    return train_causal_lm(
        prepared,
        module=module,
        cfg=cfg["train"],
        settings=settings,
        run_dir=run_dir,
        callbacks=callbacks,
        save=save_char_lstm,
    )
