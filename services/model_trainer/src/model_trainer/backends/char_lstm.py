"""The character-level LSTM: the network, and how it is built, saved and loaded.

A run directory holds safetensors weights, `config.json` (enough to rebuild the network) and
the tokenizer in its Hugging Face files (`AutoTokenizer.from_pretrained(run_dir)` reads it).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypedDict

import orjson
import torch
from safetensors.torch import load_model, save_model
from torch import Tensor, nn

from model_trainer.backends.causal_lm import CausalLMBackend, decoding, prepared_model
from model_trainer.backends.presets import char_lstm_dims
from model_trainer.contracts.model import Decoder, LMModelProto, ModelArtifact, PreparedLMModel
from model_trainer.contracts.tokenizer import TokenizerHandle
from model_trainer.contracts.train_config import ModelTrainConfig
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.digests import ordinary_permissions
from model_trainer.storage.runs import MANIFEST_FILE, verify_run
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

LSTMState = tuple[Tensor, Tensor]

# oneDNN runs a bf16 LSTM natively on AVX-512 CPUs (1.3-1.7x the fp32 tokens/s of `small` on
# 2 cores); elsewhere it would crawl, so there the recurrence stays fp32 under CPU autocast.
BF16_LSTM_ON_CPU = torch.backends.cpu.get_cpu_capability() == "AVX512"


class CharLSTMModelConfig(TypedDict):
    """Stored as the run directory's config.json."""

    model_family: str
    model_size: str
    vocab_size: int
    max_seq_len: int
    embed_dim: int
    hidden_dim: int
    num_layers: int
    dropout: float


class CharLSTMModel(nn.Module):
    """Embedding, LSTM, linear head; `step` carries the recurrent state."""

    def __init__(self, cfg: CharLSTMModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.model_size = cfg["model_size"]
        self.embed = nn.Embedding(cfg["vocab_size"], cfg["embed_dim"])
        self.lstm = nn.LSTM(
            cfg["embed_dim"],
            cfg["hidden_dim"],
            num_layers=cfg["num_layers"],
            dropout=cfg["dropout"] if cfg["num_layers"] > 1 else 0.0,
            batch_first=True,
        )
        self.head = nn.Linear(cfg["hidden_dim"], cfg["vocab_size"])

    @property
    def context(self) -> None:
        """A recurrent net takes inputs of any length."""
        return None

    @property
    def vocab_size(self) -> int:
        return self.config["vocab_size"]

    @property
    def max_seq_len(self) -> int:
        return self.config["max_seq_len"]

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Logits for every position; the mask is unused (windows are never padded)."""
        logits, _ = self.step(input_ids, None)
        return logits

    def step(self, input_ids: Tensor, state: LSTMState | None) -> tuple[Tensor, LSTMState]:
        """Logits and the state after `input_ids`."""
        hidden: Tensor
        new_state: LSTMState
        embedded = self.embed(input_ids)
        cpu_autocast = embedded.device.type == "cpu" and torch.is_autocast_enabled("cpu")
        if cpu_autocast and not BF16_LSTM_ON_CPU:
            # The embedding and head still run in bf16.
            with torch.autocast("cpu", enabled=False):
                hidden, new_state = self.lstm(embedded.float(), state)
        else:
            hidden, new_state = self.lstm(embedded, state)
        logits: Tensor = self.head(hidden)
        return logits, new_state

    def decoder(self) -> Decoder:
        return decoding(self.sampling_step())

    def sampling_step(self) -> Callable[[Tensor, LSTMState | None], tuple[Tensor, LSTMState]]:
        """`step` for sampling, where each call feeds one new token per sequence.

        A length-1 call of `nn.LSTM` spends several times the cell's arithmetic on per-call
        setup (weight checks, the sequence kernel): most of a small model's sampling time.
        Here the first layer's input projection of every token (embedding, weights and both
        biases) is one table, computed once per decoder, so a token costs a row of it, one
        matmul per layer (two above the first), the gates and the head. A prompt, a first
        call, training (dropout) and autocast (`step`'s fp32 recurrence) take `step`.
        """
        layers = [
            (w_ih.t(), w_hh.t(), b_ih + b_hh) for w_ih, w_hh, b_ih, b_hh in self.lstm.all_weights
        ]
        token_gates = torch.addmm(layers[0][2], self.embed.weight, layers[0][0])

        def sampling(input_ids: Tensor, state: LSTMState | None) -> tuple[Tensor, LSTMState]:
            if (
                state is None
                or input_ids.size(1) != 1
                or self.training
                or torch.is_autocast_enabled(input_ids.device.type)
            ):
                return self.step(input_ids, state)
            hidden, cell = state
            x = input_ids[:, 0]
            hiddens: list[Tensor] = []
            cells: list[Tensor] = []
            for layer, (w_ih_t, w_hh_t, bias) in enumerate(layers):
                given = token_gates[x] if layer == 0 else torch.addmm(bias, x, w_ih_t)
                x, layer_cell = lstm_gates(torch.addmm(given, hidden[layer], w_hh_t), cell[layer])
                hiddens.append(x)
                cells.append(layer_cell)
            logits = nn.functional.linear(x, self.head.weight, self.head.bias)
            return logits[:, None, :], (torch.stack(hiddens), torch.stack(cells))

        return sampling


def lstm_gates(gates: Tensor, cell: Tensor) -> tuple[Tensor, Tensor]:
    """An LSTM cell's update from its summed pre-activations (PyTorch's order: input, forget,
    cell, output): the new hidden and cell states."""
    input_gate, forget_gate, candidate, output_gate = gates.chunk(4, dim=1)
    new_cell = torch.sigmoid(forget_gate) * cell + torch.sigmoid(input_gate) * torch.tanh(candidate)
    return torch.sigmoid(output_gate) * torch.tanh(new_cell), new_cell


def as_char_lstm(model: LMModelProto) -> CharLSTMModel:
    """Narrow a prepared model to the network this backend saves."""
    if not isinstance(model, CharLSTMModel):
        raise ModelTrainerError(
            "MODEL_INCOMPATIBLE", f"expected a char_lstm model, got {type(model).__name__}"
        )
    return model


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


class CharLSTMBackend(CausalLMBackend):
    family = "char_lstm"

    def build(
        self, cfg: ModelTrainConfig, settings: Settings, tokenizer: TokenizerHandle
    ) -> CharLSTMModel:
        return CharLSTMModel(
            {
                "model_family": "char_lstm",
                "model_size": cfg["model_size"],
                "vocab_size": tokenizer.vocab_size,
                "max_seq_len": cfg["max_seq_len"],
                **char_lstm_dims(cfg["model_size"]),
            }
        )

    def save(self, prepared: PreparedLMModel, out_dir: str) -> ModelArtifact:
        model = as_char_lstm(prepared["model"])
        directory = Path(out_dir)
        directory.mkdir(parents=True, exist_ok=True)
        save_model(model, str(directory / WEIGHTS_FILE))
        config = orjson.dumps(model.config, option=orjson.OPT_INDENT_2)
        (directory / CONFIG_FILE).write_bytes(config)
        prepared["tokenizer"].save(directory)
        ordinary_permissions(directory)
        return {
            "out_dir": out_dir,
            "weights_path": str(directory / WEIGHTS_FILE),
            "manifest_path": str(directory / MANIFEST_FILE),
        }

    def load(self, artifact_path: str, settings: Settings) -> PreparedLMModel:
        """Rebuild the network from config.json and fill it from the safetensors weights, once
        the run's files match its manifest's digests."""
        directory = Path(artifact_path)
        if not (directory / WEIGHTS_FILE).is_file():
            raise ModelTrainerError(
                "MODEL_NOT_FOUND",
                f"no trained model in {artifact_path}",
                details={"path": artifact_path},
            )
        verify_run(directory)
        model = CharLSTMModel(_read_config(directory / CONFIG_FILE))
        prepared = prepared_model(self.family, model, load_tokenizer_dir(directory))
        load_model(model, str(directory / WEIGHTS_FILE))
        model.to(resolve_device("auto")).eval()
        return prepared


BACKEND = CharLSTMBackend()
