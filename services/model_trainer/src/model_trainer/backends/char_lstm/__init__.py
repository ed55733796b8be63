"""The character-level LSTM backend, as one table of functions."""

from __future__ import annotations

from model_trainer.backends.adapter import BackendFunctions, create_backend
from model_trainer.backends.char_lstm.config import CharLSTMTrainConfig, convert_config
from model_trainer.backends.char_lstm.evaluate import evaluate_char_lstm
from model_trainer.backends.char_lstm.generate import generate_char_lstm
from model_trainer.backends.char_lstm.io import load_char_lstm, save_char_lstm
from model_trainer.backends.char_lstm.prepare import prepare_char_lstm
from model_trainer.backends.char_lstm.score import score_char_lstm
from model_trainer.backends.char_lstm.train import train_char_lstm

CHAR_LSTM_FUNCTIONS: BackendFunctions[CharLSTMTrainConfig] = {
    "name": "char_lstm",
    "convert_config": convert_config,
    "prepare": prepare_char_lstm,
    "train": train_char_lstm,
    "evaluate": evaluate_char_lstm,
    "score": score_char_lstm,
    "generate": generate_char_lstm,
    "save": save_char_lstm,
    "load": load_char_lstm,
}

CHAR_LSTM_BACKEND = create_backend(CHAR_LSTM_FUNCTIONS)
