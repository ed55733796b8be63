"""Hugging Face's GPT2LMHeadModel behind the loop's interface: token ids in, logits out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch import Tensor, nn
from transformers import AutoConfig, GPT2Config, GPT2LMHeadModel
from transformers.cache_utils import Cache
from transformers.utils import logging as hf_logging

from model_trainer.contracts.model import LMModelProto
from model_trainer.errors import ModelTrainerError

WEIGHTS_FILE = "model.safetensors"
SHARDED_WEIGHTS_INDEX = "model.safetensors.index.json"
HF_CONFIG_FILE = "config.json"

# Saving and loading draw progress bars on stderr: noise in a worker's log. (transformers
# leaves this function unannotated; its type is declared here.)
_disable_progress_bars: Callable[[], None] = hf_logging.disable_progress_bar
_disable_progress_bars()


class GPT2LM(nn.Module):
    """Holds the Hugging Face model as `hf`, so `hf.save_pretrained` writes a standard run."""

    def __init__(self, hf: GPT2LMHeadModel, model_size: str) -> None:
        super().__init__()
        self.hf = hf
        self.model_size = model_size

    @property
    def context(self) -> int:
        """The longest sequence the position embeddings cover."""
        return self.hf.config.n_positions

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Logits for every position; no KV cache is built (training and scoring need none)."""
        output = self.hf(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        logits: Tensor = output.logits
        return logits

    def step(self, input_ids: Tensor, cache: Cache | None) -> tuple[Tensor, Cache]:
        """Logits for `input_ids` following the cached context, and the cache grown by them."""
        output = self.hf(input_ids=input_ids, past_key_values=cache, use_cache=True)
        logits: Tensor = output.logits
        grown: Cache = output.past_key_values
        return logits, grown


def as_gpt2(model: LMModelProto) -> GPT2LM:
    """Narrow a prepared model to the GPT-2 wrapper this backend's functions need."""
    if not isinstance(model, GPT2LM):
        raise ModelTrainerError(
            "MODEL_INCOMPATIBLE", f"expected a gpt2 model, got {type(model).__name__}"
        )
    return model


def read_pretrained(directory: Path) -> GPT2LMHeadModel:
    """A GPT-2 from a local Hugging Face checkpoint directory, safetensors weights only.

    Pickled weights (`pytorch_model.bin`) are refused: loading them can run code.
    """
    has_weights = any(
        (directory / name).is_file() for name in (WEIGHTS_FILE, SHARDED_WEIGHTS_INDEX)
    )
    if not ((directory / HF_CONFIG_FILE).is_file() and has_weights):
        raise ModelTrainerError(
            "MODEL_NOT_FOUND",
            f"{directory} holds no Hugging Face model ({HF_CONFIG_FILE} and {WEIGHTS_FILE})",
            details={"path": str(directory)},
        )
    config = AutoConfig.from_pretrained(directory)
    if not isinstance(config, GPT2Config):
        raise ModelTrainerError(
            "MODEL_INCOMPATIBLE",
            f"{directory} holds a {type(config).__name__}, not a GPT-2 model",
            details={"path": str(directory)},
        )
    try:
        return GPT2LMHeadModel.from_pretrained(
            directory, config=config, use_safetensors=True, attn_implementation="sdpa"
        )
    except Exception as exc:
        raise ModelTrainerError(
            "MODEL_LOAD_FAILED",
            f"cannot load the weights in {directory}: {exc}",
            details={"path": str(directory)},
        ) from exc
