"""Sample continuations, all sequences in one batch, feeding one token at a time to the KV cache.

The cache can hold the model's context and no more: a prompt keeps only its last tokens, and
when a sequence fills the context, generation starts a fresh cache from its last half.
"""

from __future__ import annotations

import torch
from torch import Tensor
from transformers.cache_utils import Cache

from model_trainer.backends.gpt2.model import GPT2LM, as_gpt2
from model_trainer.backends.sampling import generation_outcome, make_generator, sample_next
from model_trainer.backends.text_inputs import resolve_text
from model_trainer.contracts.model import GenerateConfig, GenerateOutcome, PreparedLMModel
from model_trainer.settings import Settings


def prompt_budget(context: int, max_new_tokens: int) -> int:
    """How many prompt tokens to keep: all the new tokens fit beside them when they can, and
    never fewer than half a context, so a long continuation still sees its prompt."""
    return max(context - max_new_tokens, context // 2, 1)


def _prime(model: GPT2LM, tokens: Tensor) -> tuple[Tensor, Cache]:
    """A cache of `tokens` (sequences, length) and the logits for what follows them."""
    logits, cache = model.step(tokens, None)
    return logits[:, -1, :], cache


def generate_gpt2(
    prepared: PreparedLMModel, cfg: GenerateConfig, settings: Settings
) -> GenerateOutcome:
    model = as_gpt2(prepared["model"])
    tokenizer = prepared["tokenizer"]
    eos, pad = prepared["eos_id"], prepared["pad_id"]
    n, steps, context = cfg["num_return_sequences"], cfg["max_new_tokens"], model.context
    prompt_text = resolve_text(cfg["prompt_text"], cfg["prompt_path"], settings)
    device = next(model.parameters()).device
    prompt = torch.tensor([eos, *tokenizer.encode(prompt_text)], device=device)
    prompt = prompt[-prompt_budget(context, steps) :].expand(n, -1)
    generator = make_generator(cfg["seed"], device)
    out = torch.full((n, steps), pad, device=device)
    finished = torch.zeros(n, dtype=torch.bool, device=device)
    model.eval()
    with torch.inference_mode():
        last, cache = _prime(model, prompt)
        length = prompt.size(1)
        for t in range(steps):
            token = sample_next(
                last,
                temperature=cfg["temperature"],
                top_k=cfg["top_k"],
                top_p=cfg["top_p"],
                generator=generator,
            )
            out[:, t] = torch.where(finished, pad, token)
            if cfg["stop_on_eos"]:
                finished |= token == eos
                if bool(finished.all()):
                    break
            if length == context:  # full: carry on from the last half of each sequence
                length = context // 2
                last, cache = _prime(model, torch.cat([prompt, out[:, : t + 1]], 1)[:, -length:])
            else:
                logits, cache = model.step(token[:, None], cache)
                last = logits[:, -1, :]
                length += 1
    stop_at = eos if cfg["stop_on_eos"] else None
    return generation_outcome(out.tolist(), stop_at, prompt_text, prepared["tokenizer"])
