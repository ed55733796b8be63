"""Turn next-token log-probabilities into a ScoreOutcome (shared by every backend)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from model_trainer.contracts.model import DetailLevel, ScoreOutcome, TokenScore
from model_trainer.contracts.tokenizer import TokenizerHandle

DEFAULT_TOP_K = 5


def score_outcome(
    log_probs: Tensor,
    targets: Tensor,
    *,
    token_texts: list[str],
    tokenizer: TokenizerHandle,
    detail_level: DetailLevel,
    top_k: int | None,
) -> ScoreOutcome:
    """`log_probs` (n, vocab) predicts `targets` (n,); `token_texts[i]` is target i's text."""
    target_lp = log_probs.gather(1, targets[:, None]).squeeze(1)
    loss = float(-target_lp.mean().item())
    outcome: ScoreOutcome = {
        "loss": loss,
        "perplexity": math.exp(min(loss, 50.0)),
        "num_tokens": targets.numel(),
        "per_token": None,
    }
    if detail_level == "per_char":
        outcome["per_token"] = _per_token(log_probs, target_lp, token_texts, tokenizer, top_k)
    return outcome


def _per_token(
    log_probs: Tensor,
    target_lp: Tensor,
    token_texts: list[str],
    tokenizer: TokenizerHandle,
    top_k: int | None,
) -> list[TokenScore]:
    k = min(DEFAULT_TOP_K if top_k is None else top_k, log_probs.size(-1))
    top = torch.topk(log_probs, k, dim=-1)
    top_probs: list[list[float]] = top.values.exp().tolist()
    top_ids: list[list[int]] = top.indices.tolist()
    target_values: list[float] = target_lp.tolist()
    return [
        {
            "token": text,
            "prob": math.exp(lp),
            "surprisal": -lp / math.log(2.0),
            "top_k": [
                {"token": tokenizer.id_to_token(i), "prob": p}
                for i, p in zip(ids, probs, strict=True)
            ],
        }
        for text, lp, ids, probs in zip(token_texts, target_values, top_ids, top_probs, strict=True)
    ]
