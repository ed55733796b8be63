"""Next-token sampling with temperature, top-k and top-p, from a seeded generator."""

from __future__ import annotations

import torch
from torch import Tensor

from model_trainer.contracts.model import GenerateOutcome
from model_trainer.contracts.tokenizer import Encoder


def sample_next(
    logits: Tensor,
    *,
    temperature: float,
    top_k: int,
    top_p: float,
    generator: torch.Generator,
) -> Tensor:
    """One token id per row of `logits` (batch, vocab); top_k=0 and top_p=1 switch a filter off."""
    scores = logits.float() / temperature
    if 0 < top_k < scores.size(-1):
        kth = torch.topk(scores, top_k, dim=-1).values[:, -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if top_p < 1.0:
        sorted_scores, order = torch.sort(scores, dim=-1, descending=True)
        probs = torch.softmax(sorted_scores, dim=-1)
        # Drop a token once the tokens ranked above it already cover top_p; the first stays.
        drop = torch.cumsum(probs, dim=-1) - probs >= top_p
        sorted_scores = sorted_scores.masked_fill(drop, float("-inf"))
        scores = torch.full_like(scores, float("-inf")).scatter(-1, order, sorted_scores)
    probs = torch.softmax(scores, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


def make_generator(seed: int | None, device: torch.device) -> torch.Generator:
    """Seeded when asked (same seed, same text), otherwise from fresh entropy."""
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator


def generation_outcome(
    rows: list[list[int]], stop_at: int | None, prompt_text: str, tokenizer: Encoder
) -> GenerateOutcome:
    """Prompt plus continuation, cut before the eos that ended a sequence (every backend)."""
    outputs: list[str] = []
    counts: list[int] = []
    on_eos: list[bool] = []
    for row in rows:
        stop = row.index(stop_at) if stop_at in row else len(row)
        outputs.append(prompt_text + tokenizer.decode(row[:stop]))
        counts.append(stop)
        on_eos.append(stop < len(row))
    return {"outputs": outputs, "new_tokens": counts, "finished_on_eos": on_eos}
