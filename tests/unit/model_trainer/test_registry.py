"""The backend registry: capabilities known up front, sizes checked, backends loaded once."""

import pytest

from model_trainer.backends.char_lstm import CHAR_LSTM_BACKEND
from model_trainer.backends.char_lstm.config import CHAR_LSTM_SIZES
from model_trainer.backends.registry import (
    REGISTRY,
    check_model_size,
    get_backend,
    get_capabilities,
)
from model_trainer.contracts.model import MODEL_FAMILIES
from model_trainer.errors import ModelTrainerError


def test_every_family_is_registered() -> None:
    assert set(REGISTRY) == set(MODEL_FAMILIES)


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
    assert first.name() == "char_lstm"
