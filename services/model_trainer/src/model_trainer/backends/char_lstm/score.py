"""Score text: loss and perplexity, and per token its probability, alternatives and offsets."""

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
    """Every token is predicted, the first from the eos token that stands for 'start'.

    With the character tokenizer a token is one character; with BPE, the text it covers.
    """
    model = as_char_lstm(prepared["model"])
    text = resolve_text(cfg["text"], cfg["path"], settings)
    if not text:
        raise ModelTrainerError(
            "INVALID_CONFIG", "text to score is empty", details={"field": "text"}
        )
    tokenizer = prepared["tokenizer"]
    device = next(model.parameters()).device
    token_ids, spans = tokenizer.encode_with_offsets(text)
    ids = torch.tensor([prepared["eos_id"], *token_ids], device=device)
    model.eval()
    with torch.inference_mode():
        logits = model(ids[None, :-1])[0]
        log_probs = torch.log_softmax(logits.float(), dim=-1)
    outcome = score_outcome(
        log_probs,
        ids[1:],
        token_texts=[text[start:end] for start, end in spans],
        tokenizer=tokenizer,
        detail_level=cfg["detail_level"],
        top_k=cfg["top_k"],
    )
    per_token = outcome["per_token"]
    if per_token is not None:
        for entry, (start, end) in zip(per_token, spans, strict=True):
            entry["start"], entry["end"] = start, end
    return outcome
