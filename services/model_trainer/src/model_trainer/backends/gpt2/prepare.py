"""Build a GPT-2 for a tokenizer: fresh from a size preset (seeded) or from a checkpoint."""

from __future__ import annotations

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from model_trainer.backends.gpt2.config import GPT2Dims, GPT2TrainConfig
from model_trainer.backends.gpt2.model import GPT2LM, read_pretrained
from model_trainer.contracts.model import PreparedLMModel
from model_trainer.contracts.tokenizer import TokenizerHandle
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.corpora import confine

# Our own key in config.json: which preset the weights have the shape of.
SIZE_KEY = "model_size"


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
            "bos_token_id": tokenizer.eos_id,
            "eos_token_id": tokenizer.eos_id,
            "pad_token_id": tokenizer.pad_id,
            SIZE_KEY: model_size,
        }
    )


def prepared_from(model: GPT2LM, tokenizer: TokenizerHandle) -> PreparedLMModel:
    """`max_seq_len` is the model's context: the longest input it takes."""
    if model.hf.config.vocab_size != tokenizer.vocab_size:
        raise ModelTrainerError(
            "MODEL_INCOMPATIBLE",
            f"tokenizer {tokenizer.tokenizer_id} has {tokenizer.vocab_size} tokens, "
            f"the model expects {model.hf.config.vocab_size}",
            details={"tokenizer_id": tokenizer.tokenizer_id},
        )
    return {
        "model": model,
        "model_family": "gpt2",
        "model_size": model.model_size,
        "tokenizer": tokenizer,
        "tokenizer_id": tokenizer.tokenizer_id,
        "eos_id": tokenizer.eos_id,
        "pad_id": tokenizer.pad_id,
        "max_seq_len": model.context,
        "tok_for_dataset": tokenizer,
    }


def _fine_tune_from(
    path: str, settings: Settings, dims: GPT2Dims, tokenizer: TokenizerHandle, model_size: str
) -> GPT2LMHeadModel:
    """A checkpoint under DATA_ROOT or ARTIFACTS_ROOT whose shape is the named preset's."""
    directory = confine(path, [settings["data_root"], settings["artifacts_root"]])
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


def prepare_gpt2(
    cfg: GPT2TrainConfig, settings: Settings, tokenizer: TokenizerHandle
) -> PreparedLMModel:
    train, dims = cfg["train"], cfg["dims"]
    size = train["model_size"]
    init_from = train.get("init_from")
    torch.manual_seed(train["seed"])
    if init_from is None:
        hf = GPT2LMHeadModel(hf_config(dims, tokenizer, size))
        hf.set_attn_implementation("sdpa")
    else:
        hf = _fine_tune_from(init_from, settings, dims, tokenizer, size)
    model = GPT2LM(hf, size)
    if train["max_seq_len"] > model.context:
        raise ModelTrainerError(
            "INVALID_CONFIG",
            f"max_seq_len must be <= {model.context} (the context of this {size} gpt2), "
            f"got {train['max_seq_len']}",
            details={"field": "max_seq_len"},
        )
    return prepared_from(model, tokenizer)
