"""Score text: loss and perplexity, and per token its probability, alternatives and offsets.

A text longer than the model's context is scored in sliding windows: each token is scored
once, and every token after the first window sees at least half a context before it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor

from model_trainer.backends.gpt2.model import GPT2LM, as_gpt2
from model_trainer.backends.text_inputs import resolve_text
from model_trainer.backends.token_scores import score_outcome
from model_trainer.contracts.model import (
    PreparedLMModel,
    ScoreConfig,
    ScoreOutcome,
    TokenScore,
)
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings


def windows(count: int, context: int) -> Iterator[tuple[int, int, int]]:
    """(start, low, high): inputs `start:high` score targets `low:high` of `count`."""
    high = min(count, context)
    yield 0, 0, high
    stride = max(1, context // 2)
    while high < count:
        low, high = high, min(count, high + stride)
        yield high - context, low, high


def _log_probs(model: GPT2LM, inputs: Tensor, skip: int) -> Tensor:
    """Next-token log-probabilities at every input position from `skip` on."""
    logits = model(inputs[None, :])[0, skip:]
    return torch.log_softmax(logits.float(), dim=-1)


def _merge(parts: list[ScoreOutcome], spans: list[tuple[int, int]]) -> ScoreOutcome:
    """One outcome from the windows' (each window's loss is a mean over its tokens)."""
    count = sum(part["num_tokens"] for part in parts)
    loss = sum(part["loss"] * part["num_tokens"] for part in parts) / count
    per_token: list[TokenScore] | None = None
    if parts[0]["per_token"] is not None:
        per_token = [entry for part in parts for entry in part["per_token"] or []]
        for entry, (start, end) in zip(per_token, spans, strict=True):
            entry["start"], entry["end"] = start, end
    return {
        "loss": loss,
        "perplexity": math.exp(min(loss, 50.0)),
        "num_tokens": count,
        "per_token": per_token,
    }


def score_gpt2(prepared: PreparedLMModel, cfg: ScoreConfig, settings: Settings) -> ScoreOutcome:
    """Every token is predicted, the first from the eos token that stands for 'start'."""
    model = as_gpt2(prepared["model"])
    text = resolve_text(cfg["text"], cfg["path"], settings)
    if not text:
        raise ModelTrainerError(
            "INVALID_CONFIG", "text to score is empty", details={"field": "text"}
        )
    tokenizer = prepared["tokenizer"]
    ids, spans = tokenizer.encode_with_offsets(text)
    device = next(model.parameters()).device
    tokens = torch.tensor([prepared["eos_id"], *ids], device=device)
    parts: list[ScoreOutcome] = []
    model.eval()
    with torch.inference_mode():
        for start, low, high in windows(len(ids), model.context):
            parts.append(
                score_outcome(
                    _log_probs(model, tokens[start:high], low - start),
                    tokens[low + 1 : high + 1],
                    token_texts=[text[a:b] for a, b in spans[low:high]],
                    tokenizer=tokenizer,
                    detail_level=cfg["detail_level"],
                    top_k=cfg["top_k"],
                )
            )
    return _merge(parts, spans)
