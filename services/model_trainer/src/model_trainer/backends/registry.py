"""Known backends and what they can do; a backend's module (and torch) loads on first use."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypedDict

from model_trainer.contracts.model import BackendCapabilities, ModelBackend, ModelFamily
from model_trainer.errors import ModelTrainerError


class BackendRegistration(TypedDict):
    capabilities: BackendCapabilities
    load: Callable[[], ModelBackend]


def _load_char_lstm() -> ModelBackend:
    from model_trainer.backends.char_lstm import CHAR_LSTM_BACKEND

    return CHAR_LSTM_BACKEND


def _load_gpt2() -> ModelBackend:
    from model_trainer.backends.gpt2 import GPT2_BACKEND

    return GPT2_BACKEND


REGISTRY: dict[ModelFamily, BackendRegistration] = {
    "char_lstm": {
        "capabilities": {
            "supports_train": True,
            "supports_evaluate": True,
            "supports_score": True,
            "supports_generate": True,
            "supports_distributed": False,
            "supported_sizes": ("tiny", "small", "medium"),
        },
        "load": _load_char_lstm,
    },
    # One process, one device: no DistributedDataParallel yet.
    "gpt2": {
        "capabilities": {
            "supports_train": True,
            "supports_evaluate": True,
            "supports_score": True,
            "supports_generate": True,
            "supports_distributed": False,
            "supported_sizes": ("tiny", "nano", "small", "medium"),
        },
        "load": _load_gpt2,
    },
}

_loaded: dict[ModelFamily, ModelBackend] = {}


def get_capabilities(family: ModelFamily) -> BackendCapabilities:
    return REGISTRY[family]["capabilities"]


def check_model_size(family: ModelFamily, size: str) -> None:
    """Reject a size the family does not offer, without importing the backend."""
    sizes = get_capabilities(family)["supported_sizes"]
    if size not in sizes:
        raise ModelTrainerError(
            "INVALID_MODEL_SIZE",
            f"model_size for {family} must be one of {', '.join(sizes)}, got {size!r}",
            details={"field": "model_size"},
        )


def get_backend(family: ModelFamily) -> ModelBackend:
    if family not in _loaded:
        _loaded[family] = REGISTRY[family]["load"]()
    return _loaded[family]
