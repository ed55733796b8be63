"""Presets and the registry: capabilities and contexts known without torch, sizes checked,
backends loaded on first use."""

import pytest

from model_trainer.backends.char_lstm import BACKEND as CHAR_LSTM_BACKEND
from model_trainer.backends.gpt2 import BACKEND as GPT2_BACKEND
from model_trainer.backends.presets import (
    CAPABILITIES,
    CHAR_LSTM_SIZES,
    check_model_size,
    context_of,
    get_capabilities,
)
from model_trainer.backends.registry import get_backend
from model_trainer.contracts.model import MODEL_FAMILIES
from model_trainer.errors import ModelTrainerError


def test_every_family_is_registered() -> None:
    assert set(CAPABILITIES) == set(MODEL_FAMILIES)


def test_char_lstm_capabilities() -> None:
    assert get_capabilities("char_lstm") == {
        "supports_train": True,
        "supports_evaluate": True,
        "supports_score": True,
        "supports_generate": True,
        "supports_distributed": False,
        "supported_sizes": ("tiny", "small", "medium"),
    }


def test_registry_sizes_match_the_backend_presets() -> None:
    assert get_capabilities("char_lstm")["supported_sizes"] == tuple(CHAR_LSTM_SIZES)


@pytest.mark.parametrize("size", ["tiny", "small", "medium"])
def test_check_model_size_accepts_offered_sizes(size: str) -> None:
    check_model_size("char_lstm", size)


@pytest.mark.parametrize("size", ["huge", "", "Tiny", "gpt2"])
def test_check_model_size_rejects_other_sizes(size: str) -> None:
    with pytest.raises(ModelTrainerError) as info:
        check_model_size("char_lstm", size)
    assert info.value.code == "INVALID_MODEL_SIZE"
    assert info.value.http_status == 400
    assert info.value.details == {"field": "model_size"}
    assert info.value.message == (
        f"model_size for char_lstm must be one of tiny, small, medium, got {size!r}"
    )


def test_get_backend_loads_once_and_returns_the_same_object() -> None:
    first = get_backend("char_lstm")
    second = get_backend("char_lstm")
    assert first is second
    assert first is CHAR_LSTM_BACKEND
    assert first.family == "char_lstm"
    assert get_backend("gpt2") is GPT2_BACKEND


def test_contexts_come_from_the_presets() -> None:
    assert context_of("gpt2", "tiny") == 128
    assert context_of("gpt2", "small") == 1024
    assert context_of("char_lstm", "small") is None
    with pytest.raises(ModelTrainerError) as info:
        context_of("char_lstm", "nano")
    assert info.value.code == "INVALID_MODEL_SIZE"
