"""The shared causal-LM code refuses a model it cannot train: anything that is not a module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Self

import pytest
import torch
from torch import Tensor
from torch.nn import Parameter

from model_trainer.backends.causal_lm import as_module
from model_trainer.contracts.model import Decoder
from model_trainer.errors import ModelTrainerError


class NotAModule:
    """Answers every LMModelProto call but holds no torch module."""

    model_size = "fake"
    context = None
    vocab_size = 3
    max_seq_len = 4

    def __call__(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        return torch.zeros(*input_ids.shape, self.vocab_size)

    def decoder(self) -> Decoder:
        return self

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        return iter(())

    def train(self, mode: bool = True) -> Self:
        return self

    def eval(self) -> Self:
        return self

    def to(self, device: torch.device) -> Self:
        return self


def test_a_model_that_is_not_a_torch_module_is_refused() -> None:
    model = NotAModule()
    assert model.decoder()(torch.zeros(1, 2, dtype=torch.long)).shape == (1, 2, 3)
    with pytest.raises(ModelTrainerError) as caught:
        as_module(model)
    assert caught.value.code == "MODEL_INCOMPATIBLE"
    assert "NotAModule" in caught.value.message
