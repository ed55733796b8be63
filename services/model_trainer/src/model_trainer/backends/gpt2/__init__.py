"""The GPT-2 backend (Hugging Face transformers), as one table of functions."""

from __future__ import annotations

from model_trainer.backends.adapter import BackendFunctions, create_backend
from model_trainer.backends.gpt2.config import GPT2TrainConfig, convert_config
from model_trainer.backends.gpt2.evaluate import evaluate_gpt2
from model_trainer.backends.gpt2.generate import generate_gpt2
from model_trainer.backends.gpt2.io import load_gpt2, save_gpt2
from model_trainer.backends.gpt2.prepare import prepare_gpt2
from model_trainer.backends.gpt2.score import score_gpt2
from model_trainer.backends.gpt2.train import train_gpt2

GPT2_FUNCTIONS: BackendFunctions[GPT2TrainConfig] = {
    "name": "gpt2",
    "convert_config": convert_config,
    "prepare": prepare_gpt2,
    "train": train_gpt2,
    "evaluate": evaluate_gpt2,
    "score": score_gpt2,
    "generate": generate_gpt2,
    "save": save_gpt2,
    "load": load_gpt2,
}

GPT2_BACKEND = create_backend(GPT2_FUNCTIONS)
