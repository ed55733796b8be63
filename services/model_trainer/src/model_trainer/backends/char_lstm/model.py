"""The network: embedding, LSTM, linear head; `step` carries the recurrent state."""

from __future__ import annotations

from torch import Tensor, nn

from model_trainer.backends.char_lstm.config import CharLSTMModelConfig
from model_trainer.contracts.model import LMModelProto
from model_trainer.errors import ModelTrainerError

LSTMState = tuple[Tensor, Tensor]


class CharLSTMModel(nn.Module):
    def __init__(self, cfg: CharLSTMModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.embed = nn.Embedding(cfg["vocab_size"], cfg["embed_dim"])
        self.lstm = nn.LSTM(
            cfg["embed_dim"],
            cfg["hidden_dim"],
            num_layers=cfg["num_layers"],
            dropout=cfg["dropout"] if cfg["num_layers"] > 1 else 0.0,
            batch_first=True,
        )
        self.head = nn.Linear(cfg["hidden_dim"], cfg["vocab_size"])

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Logits for every position; the mask is unused (windows are never padded)."""
        logits, _ = self.step(input_ids, None)
        return logits

    def step(self, input_ids: Tensor, state: LSTMState | None) -> tuple[Tensor, LSTMState]:
        """Logits and the state after `input_ids`, so generation feeds one token at a time."""
        hidden: Tensor
        new_state: LSTMState
        hidden, new_state = self.lstm(self.embed(input_ids), state)
        logits: Tensor = self.head(hidden)
        return logits, new_state


def as_char_lstm(model: LMModelProto) -> CharLSTMModel:
    """Narrow a prepared model to the char-LSTM network this backend's functions need."""
    if not isinstance(model, CharLSTMModel):
        raise ModelTrainerError(
            "MODEL_INCOMPATIBLE", f"expected a char_lstm model, got {type(model).__name__}"
        )
    return model
