"""Save and load a GPT-2 run directory in Hugging Face's own layout.

`save_pretrained` writes config.json and model.safetensors, the tokenizer its Hugging Face
files, so `AutoModelForCausalLM.from_pretrained(dir)` and `AutoTokenizer.from_pretrained(dir)`
load a run as it is, anywhere.
"""

from __future__ import annotations

from pathlib import Path

from model_trainer.backends.gpt2.model import GPT2LM, WEIGHTS_FILE, as_gpt2, read_pretrained
from model_trainer.backends.gpt2.prepare import SIZE_KEY, prepared_from
from model_trainer.contracts.model import ModelArtifact, PreparedLMModel
from model_trainer.settings import Settings
from model_trainer.storage.runs import MANIFEST_FILE
from model_trainer.tokenizers.store import load_tokenizer_dir
from model_trainer.training.device import resolve_device

# A checkpoint saved elsewhere carries no preset name.
UNNAMED_SIZE = "custom"


def save_gpt2(prepared: PreparedLMModel, out_dir: str) -> ModelArtifact:
    model = as_gpt2(prepared["model"])
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    model.hf.save_pretrained(directory)
    prepared["tokenizer"].save(directory)
    return {
        "out_dir": out_dir,
        "weights_path": str(directory / WEIGHTS_FILE),
        "manifest_path": str(directory / MANIFEST_FILE),
    }


def load_gpt2(artifact_path: str, settings: Settings) -> PreparedLMModel:
    """The weights and the tokenizer saved beside them, on the best device here."""
    directory = Path(artifact_path)
    hf = read_pretrained(directory)
    tokenizer = load_tokenizer_dir(directory)
    size = str(hf.config.to_dict().get(SIZE_KEY, UNNAMED_SIZE))
    model = GPT2LM(hf, size)
    model.to(resolve_device("auto")).eval()
    return prepared_from(model, tokenizer)
