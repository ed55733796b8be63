"""GPT-2 (Hugging Face transformers): the model, and how it is built, saved and loaded.

A run directory is in Hugging Face's own layout: `save_pretrained` writes config.json and
model.safetensors, the tokenizer its Hugging Face files, so
`AutoModelForCausalLM.from_pretrained(dir)` and `AutoTokenizer.from_pretrained(dir)` load a run
as it is, anywhere.

Training, validation, scoring and export run GPT-2's arithmetic directly over the Hugging Face
module's own layers (`gpt2_logits`): the generic forward around them (mask and cache logic,
position ids, a padding check, output classes, keyword plumbing) costs about 5% of a step
at the `nano` size on the CPU. The parameters are the Hugging Face module's, so saving,
loading, checkpoints and its KV-cache decoding (`step`) are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn
from transformers import AutoConfig, GPT2Config, GPT2LMHeadModel
from transformers.cache_utils import Cache
from transformers.models.gpt2.modeling_gpt2 import GPT2Block
from transformers.utils import logging as hf_logging

from model_trainer.backends.causal_lm import CausalLMBackend, decoding, prepared_model
from model_trainer.backends.presets import GPT2Dims, gpt2_dims
from model_trainer.contracts.model import Decoder, LMModelProto, ModelArtifact, PreparedLMModel
from model_trainer.contracts.tokenizer import TokenizerHandle
from model_trainer.contracts.train_config import ModelTrainConfig
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.corpora import confine
from model_trainer.storage.digests import ordinary_permissions
from model_trainer.storage.run_store import fetch_run
from model_trainer.storage.runs import MANIFEST_FILE, verify_run
from model_trainer.tokenizers.store import load_tokenizer_dir
from model_trainer.training.device import resolve_device

WEIGHTS_FILE = "model.safetensors"
SHARDED_WEIGHTS_INDEX = "model.safetensors.index.json"
HF_CONFIG_FILE = "config.json"
# Our own key in config.json: which preset the weights have the shape of. A checkpoint saved
# elsewhere carries none.
SIZE_KEY = "model_size"
UNNAMED_SIZE = "custom"
# GPT-2's tanh GELU as one PyTorch kernel (transformers' `gelu_new` is seven elementwise ops):
# the same function up to rounding, and the name Hugging Face's loader maps to that kernel.
ACTIVATION = "gelu_pytorch_tanh"

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

    @property
    def vocab_size(self) -> int:
        return self.hf.config.vocab_size

    @property
    def max_seq_len(self) -> int:
        return self.context

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Logits for every position; no KV cache is built (training and scoring need none).

        Only a padding mask takes Hugging Face's generic forward."""
        if attention_mask is not None:
            output = self.hf(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
            masked: Tensor = output.logits
            return masked
        return gpt2_logits(self.hf, input_ids)

    def step(self, input_ids: Tensor, cache: Cache | None) -> tuple[Tensor, Cache]:
        """Logits for `input_ids` following the cached context, and the cache grown by them."""
        output = self.hf(input_ids=input_ids, past_key_values=cache, use_cache=True)
        logits: Tensor = output.logits
        grown: Cache = output.past_key_values
        return logits, grown

    def decoder(self) -> Decoder:
        return decoding(self.step)


def gpt2_logits(hf: GPT2LMHeadModel, input_ids: Tensor) -> Tensor:
    """GPT2LMHeadModel's causal forward without a mask or cache, on its own layers: the same
    operations in the same order, so the same logits."""
    body = hf.transformer
    positions = torch.arange(input_ids.size(1), device=input_ids.device)
    hidden = body.drop(body.wte(input_ids) + body.wpe(positions))
    for block in [block for block in body.h if isinstance(block, GPT2Block)]:
        hidden = _block(block, hidden)
    logits: Tensor = hf.lm_head(body.ln_f(hidden))
    return logits


def _block(block: GPT2Block, hidden: Tensor) -> Tensor:
    """One pre-LayerNorm block: fused QKV projection, causal SDPA, then the MLP."""
    attn, mlp = block.attn, block.mlp
    batch, seq, width = hidden.shape
    heads = (batch, seq, attn.num_heads, attn.head_dim)
    q, k, v = attn.c_attn(block.ln_1(hidden)).split(width, dim=2)
    mixed = nn.functional.scaled_dot_product_attention(
        q.view(heads).transpose(1, 2),
        k.view(heads).transpose(1, 2),
        v.view(heads).transpose(1, 2),
        dropout_p=attn.attn_dropout.p if attn.training else 0.0,
        is_causal=True,
        scale=attn.scaling,
    )
    mixed = mixed.transpose(1, 2).reshape(batch, seq, width)
    hidden = hidden + attn.resid_dropout(attn.c_proj(mixed))
    out: Tensor = hidden + mlp.dropout(mlp.c_proj(mlp.act(mlp.c_fc(block.ln_2(hidden)))))
    return out


def as_gpt2(model: LMModelProto) -> GPT2LM:
    """Narrow a prepared model to the GPT-2 wrapper this backend saves."""
    if not isinstance(model, GPT2LM):
        raise ModelTrainerError(
            "MODEL_INCOMPATIBLE", f"expected a gpt2 model, got {type(model).__name__}"
        )
    return model


def hf_config(dims: GPT2Dims, tokenizer: TokenizerHandle, model_size: str) -> GPT2Config:
    """GPT-2's config for a preset, with the tokenizer's vocabulary and special ids."""
    return GPT2Config.from_dict(
        {
            "vocab_size": tokenizer.vocab_size,
            "n_positions": dims["n_positions"],
            "n_embd": dims["n_embd"],
            "n_layer": dims["n_layer"],
            "n_head": dims["n_head"],
            "resid_pdrop": dims["dropout"],
            "embd_pdrop": dims["dropout"],
            "attn_pdrop": dims["dropout"],
            "activation_function": ACTIVATION,
            "bos_token_id": tokenizer.eos_id,
            "eos_token_id": tokenizer.eos_id,
            "pad_token_id": tokenizer.pad_id,
            SIZE_KEY: model_size,
        }
    )


def read_pretrained(directory: Path) -> GPT2LMHeadModel:
    """A GPT-2 from a local Hugging Face checkpoint directory, safetensors weights only.

    Pickled weights (`pytorch_model.bin`) are refused: loading them can run code. One of our
    runs is checked against its manifest's digests first (ARTIFACT_CORRUPT, never loaded).
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
    verify_run(directory)
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


def _fine_tune_from(
    path: str, settings: Settings, dims: GPT2Dims, tokenizer: TokenizerHandle, model_size: str
) -> GPT2LMHeadModel:
    """A checkpoint under DATA_ROOT or ARTIFACTS_ROOT whose shape is the named preset's."""
    directory = confine(path, [settings["data_root"], settings["artifacts_root"]])
    runs = settings["artifacts_root"] / "runs"
    if directory.is_relative_to(runs) and directory != runs:
        fetch_run(settings, directory.relative_to(runs).parts[0])  # a run, from the store
    hf = read_pretrained(directory)
    shape = (hf.config.n_layer, hf.config.n_embd, hf.config.n_head)
    preset = (dims["n_layer"], dims["n_embd"], dims["n_head"])
    if shape != preset:
        raise ModelTrainerError(
            "MODEL_INCOMPATIBLE",
            f"init_from {path} has layers x width x heads {shape}, but model_size "
            f"{model_size!r} is {preset}; give the size of the checkpoint",
            details={"field": "init_from"},
        )
    # The run's tokenizer decides the special ids; the checkpoint's may differ.
    for config in (hf.config, hf.generation_config):
        config.bos_token_id = tokenizer.eos_id
        config.eos_token_id = tokenizer.eos_id
        config.pad_token_id = tokenizer.pad_id
    hf.config.update({SIZE_KEY: model_size})
    return hf


class GPT2Backend(CausalLMBackend):
    family = "gpt2"

    def build(
        self, cfg: ModelTrainConfig, settings: Settings, tokenizer: TokenizerHandle
    ) -> GPT2LM:
        """From scratch with a preset's shape, or fine-tuning a checkpoint (`init_from`)."""
        size = cfg["model_size"]
        dims = gpt2_dims(size)
        init_from = cfg.get("init_from")
        if init_from is None:
            hf = GPT2LMHeadModel(hf_config(dims, tokenizer, size))
            hf.set_attn_implementation("sdpa")
        else:
            hf = _fine_tune_from(init_from, settings, dims, tokenizer, size)
        return GPT2LM(hf, size)

    def save(self, prepared: PreparedLMModel, out_dir: str) -> ModelArtifact:
        model = as_gpt2(prepared["model"])
        directory = Path(out_dir)
        directory.mkdir(parents=True, exist_ok=True)
        model.hf.save_pretrained(directory)
        prepared["tokenizer"].save(directory)
        ordinary_permissions(directory)
        return {
            "out_dir": out_dir,
            "weights_path": str(directory / WEIGHTS_FILE),
            "manifest_path": str(directory / MANIFEST_FILE),
        }

    def load(self, artifact_path: str, settings: Settings) -> PreparedLMModel:
        """The weights and the tokenizer saved beside them, on the best device here."""
        directory = Path(artifact_path)
        hf = read_pretrained(directory)
        tokenizer = load_tokenizer_dir(directory)
        size = str(hf.config.to_dict().get(SIZE_KEY, UNNAMED_SIZE))
        model = GPT2LM(hf, size)
        model.to(resolve_device("auto")).eval()
        return prepared_model(self.family, model, tokenizer)


BACKEND = GPT2Backend()
