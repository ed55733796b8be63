"""Size presets and the GPT-2 backend's own train config."""

from __future__ import annotations

from typing import TypedDict

from model_trainer.contracts.model import ModelTrainConfig
from model_trainer.errors import ModelTrainerError


class GPT2Dims(TypedDict):
    """The architecture a size names; `n_positions` is the longest context the model takes."""

    n_layer: int
    n_embd: int
    n_head: int
    n_positions: int
    dropout: float


class GPT2TrainConfig(TypedDict):
    train: ModelTrainConfig
    dims: GPT2Dims


# `nano` is the 4 x 128 x 4 model nanoGPT trains on tinyshakespeare characters on a laptop
# CPU; `small` and `medium` are the 124M and 350M GPT-2 shapes (with GPT-2's 0.1 dropout).
GPT2_SIZES: dict[str, GPT2Dims] = {
    "tiny": {"n_layer": 2, "n_embd": 32, "n_head": 2, "n_positions": 128, "dropout": 0.0},
    "nano": {"n_layer": 4, "n_embd": 128, "n_head": 4, "n_positions": 256, "dropout": 0.0},
    "small": {"n_layer": 12, "n_embd": 768, "n_head": 12, "n_positions": 1024, "dropout": 0.1},
    "medium": {"n_layer": 24, "n_embd": 1024, "n_head": 16, "n_positions": 1024, "dropout": 0.1},
}


def dims_for_size(size: str) -> GPT2Dims:
    if size not in GPT2_SIZES:
        raise ModelTrainerError(
            "INVALID_MODEL_SIZE",
            f"model_size must be one of {', '.join(GPT2_SIZES)}, got {size!r}",
            details={"field": "model_size"},
        )
    return GPT2_SIZES[size]


def convert_config(cfg: ModelTrainConfig) -> GPT2TrainConfig:
    return {"train": cfg, "dims": dims_for_size(cfg["model_size"])}
