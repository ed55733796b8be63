"""Save and load a char-LSTM run directory: safetensors weights, config.json, and the tokenizer
in its Hugging Face files (`AutoTokenizer.from_pretrained(run_dir)` reads it)."""

from __future__ import annotations

from pathlib import Path

import orjson
from safetensors.torch import load_model, save_model

from model_trainer.backends.char_lstm.config import CharLSTMModelConfig
from model_trainer.backends.char_lstm.model import CharLSTMModel, as_char_lstm
from model_trainer.backends.char_lstm.prepare import prepared_from
from model_trainer.contracts.model import ModelArtifact, PreparedLMModel
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.runs import MANIFEST_FILE
from model_trainer.tokenizers.store import load_tokenizer_dir
from model_trainer.training.device import resolve_device
from platform_core.json_types import (
    load_json_object,
    require_float,
    require_int,
    require_str,
)

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


def save_char_lstm(prepared: PreparedLMModel, out_dir: str) -> ModelArtifact:
    model = as_char_lstm(prepared["model"])
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    save_model(model, str(directory / WEIGHTS_FILE))
    (directory / CONFIG_FILE).write_bytes(orjson.dumps(model.config, option=orjson.OPT_INDENT_2))
    prepared["tokenizer"].save(directory)
    return {
        "out_dir": out_dir,
        "weights_path": str(directory / WEIGHTS_FILE),
        "manifest_path": str(directory / MANIFEST_FILE),
    }


def _read_config(path: Path) -> CharLSTMModelConfig:
    raw = load_json_object(path.read_bytes())
    return {
        "model_family": require_str(raw, "model_family"),
        "model_size": require_str(raw, "model_size"),
        "vocab_size": require_int(raw, "vocab_size"),
        "max_seq_len": require_int(raw, "max_seq_len"),
        "embed_dim": require_int(raw, "embed_dim"),
        "hidden_dim": require_int(raw, "hidden_dim"),
        "num_layers": require_int(raw, "num_layers"),
        "dropout": require_float(raw, "dropout"),
    }


def load_char_lstm(artifact_path: str, settings: Settings) -> PreparedLMModel:
    """Rebuild the network from config.json and fill it from the safetensors weights."""
    directory = Path(artifact_path)
    if not (directory / WEIGHTS_FILE).is_file():
        raise ModelTrainerError(
            "MODEL_NOT_FOUND",
            f"no trained model in {artifact_path}",
            details={"path": artifact_path},
        )
    cfg = _read_config(directory / CONFIG_FILE)
    tokenizer = load_tokenizer_dir(directory)
    if tokenizer.vocab_size != cfg["vocab_size"]:
        raise ModelTrainerError(
            "MODEL_INCOMPATIBLE",
            f"tokenizer {tokenizer.tokenizer_id} has {tokenizer.vocab_size} tokens, "
            f"model expects {cfg['vocab_size']}",
            details={"tokenizer_id": tokenizer.tokenizer_id, "path": artifact_path},
        )
    model = CharLSTMModel(cfg)
    load_model(model, str(directory / WEIGHTS_FILE))
    model.to(resolve_device("auto")).eval()
    return prepared_from(model, tokenizer)
