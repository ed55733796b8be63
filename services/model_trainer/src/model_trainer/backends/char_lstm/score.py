"""Score text: loss and perplexity, and per character its probability and top-k alternatives."""

from __future__ import annotations

import torch

from model_trainer.backends.char_lstm.model import as_char_lstm
from model_trainer.backends.text_inputs import resolve_text
from model_trainer.backends.token_scores import score_outcome
from model_trainer.contracts.model import PreparedLMModel, ScoreConfig, ScoreOutcome
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings


def score_char_lstm(
    prepared: PreparedLMModel, cfg: ScoreConfig, settings: Settings
) -> ScoreOutcome:
    """Every character is predicted, the first from the eos token that stands for 'start'."""
    model = as_char_lstm(prepared["model"])
    text = resolve_text(cfg["text"], cfg["path"], settings)
    if not text:
        raise ModelTrainerError(
            "INVALID_CONFIG", "text to score is empty", details={"field": "text"}
        )
    tokenizer = prepared["tokenizer"]
    device = next(model.parameters()).device
    ids = torch.tensor([prepared["eos_id"], *tokenizer.encode(text)], device=device)
    model.eval()
    with torch.inference_mode():
        logits = model(ids[None, :-1])[0]
        log_probs = torch.log_softmax(logits.float(), dim=-1)
    return score_outcome(
        log_probs,
        ids[1:],
        token_texts=list(text),
        tokenizer=tokenizer,
        detail_level=cfg["detail_level"],
        top_k=cfg["top_k"],
    )
