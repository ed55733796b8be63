"""What each model family offers, known without torch: sizes, contexts, capabilities.

The API's admission checks and the backends both read this module, so a size or a context is
written once. Importing it never imports torch or transformers.
"""

from __future__ import annotations

from typing import TypedDict

from model_trainer.contracts.model import BackendCapabilities, ModelFamily
from model_trainer.errors import ModelTrainerError, quoted


class CharLSTMDims(TypedDict):
    embed_dim: int
    hidden_dim: int
    num_layers: int
    dropout: float


class GPT2Dims(TypedDict):
    """The architecture a size names; `n_positions` is the longest context the model takes."""

    n_layer: int
    n_embd: int
    n_head: int
    n_positions: int
    dropout: float


# `small` (~0.35M parameters) is the size char_lstm's default recipe (contracts/train_config
# FAMILY_TRAIN_DEFAULTS) was measured with: hidden 256 in one layer keeps a step fast on 2 CPU
# cores (384 costs ~1.8x per token, a second layer ~2.3x), which wins a 180 s budget.
CHAR_LSTM_SIZES: dict[str, CharLSTMDims] = {
    "tiny": {"embed_dim": 16, "hidden_dim": 32, "num_layers": 1, "dropout": 0.0},
    "small": {"embed_dim": 64, "hidden_dim": 256, "num_layers": 1, "dropout": 0.0},
    "medium": {"embed_dim": 128, "hidden_dim": 512, "num_layers": 2, "dropout": 0.1},
}

# `nano` is the 4 x 128 x 4 model nanoGPT trains on tinyshakespeare characters on a laptop
# CPU; `small` and `medium` are the 124M and 350M GPT-2 shapes (with GPT-2's 0.1 dropout).
GPT2_SIZES: dict[str, GPT2Dims] = {
    "tiny": {"n_layer": 2, "n_embd": 32, "n_head": 2, "n_positions": 128, "dropout": 0.0},
    "nano": {"n_layer": 4, "n_embd": 128, "n_head": 4, "n_positions": 256, "dropout": 0.0},
    "small": {"n_layer": 12, "n_embd": 768, "n_head": 12, "n_positions": 1024, "dropout": 0.1},
    "medium": {"n_layer": 24, "n_embd": 1024, "n_head": 16, "n_positions": 1024, "dropout": 0.1},
}

CAPABILITIES: dict[ModelFamily, BackendCapabilities] = {
    "char_lstm": {
        "supports_train": True,
        "supports_evaluate": True,
        "supports_score": True,
        "supports_generate": True,
        "supports_distributed": False,
        "supported_sizes": tuple(CHAR_LSTM_SIZES),
    },
    # One process, one device: no DistributedDataParallel yet.
    "gpt2": {
        "supports_train": True,
        "supports_evaluate": True,
        "supports_score": True,
        "supports_generate": True,
        "supports_distributed": False,
        "supported_sizes": tuple(GPT2_SIZES),
    },
}


def get_capabilities(family: ModelFamily) -> BackendCapabilities:
    return CAPABILITIES[family]


def check_model_size(family: ModelFamily, size: str) -> None:
    """Refuse a size the family does not offer."""
    sizes = CAPABILITIES[family]["supported_sizes"]
    if size not in sizes:
        raise ModelTrainerError(
            "INVALID_MODEL_SIZE",
            f"model_size for {family} must be one of {', '.join(sizes)}, got {quoted(size)}",
            details={"field": "model_size"},
        )


def char_lstm_dims(size: str) -> CharLSTMDims:
    check_model_size("char_lstm", size)
    return CHAR_LSTM_SIZES[size]


def gpt2_dims(size: str) -> GPT2Dims:
    check_model_size("gpt2", size)
    return GPT2_SIZES[size]


def context_of(family: ModelFamily, size: str) -> int | None:
    """The longest sequence a fresh model of this size takes; None means no limit (an LSTM)."""
    check_model_size(family, size)
    return GPT2_SIZES[size]["n_positions"] if family == "gpt2" else None


def check_fits_preset(family: ModelFamily, size: str, max_seq_len: int) -> None:
    """Refuse, before anything is queued, windows longer than a fresh model of this size takes."""
    context = context_of(family, size)
    if context is not None and max_seq_len > context:
        raise ModelTrainerError(
            "INVALID_CONFIG",
            f"max_seq_len must be <= {context} (the context of a {size} {family}), "
            f"got {max_seq_len}",
            details={"field": "max_seq_len"},
        )


# Every size some family offers, for the API's documentation (each family's own are checked).
MODEL_SIZES: tuple[str, ...] = tuple(
    dict.fromkeys(size for caps in CAPABILITIES.values() for size in caps["supported_sizes"])
)
