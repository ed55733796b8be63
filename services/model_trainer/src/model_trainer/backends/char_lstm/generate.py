"""Sample continuations, all sequences in one batch, feeding the LSTM one token at a time."""

from __future__ import annotations

import torch
from torch import Tensor

from model_trainer.backends.char_lstm.model import CharLSTMModel, LSTMState, as_char_lstm
from model_trainer.backends.sampling import generation_outcome, make_generator, sample_next
from model_trainer.backends.text_inputs import resolve_text
from model_trainer.contracts.model import GenerateConfig, GenerateOutcome, PreparedLMModel
from model_trainer.settings import Settings


def _prime(model: CharLSTMModel, prompt: Tensor, copies: int) -> tuple[Tensor, LSTMState]:
    """Run the prompt once, then share its last logits and state across all sequences."""
    logits, (h, c) = model.step(prompt[None, :], None)
    last = logits[:, -1, :].expand(copies, -1)
    return last, (h.expand(-1, copies, -1).contiguous(), c.expand(-1, copies, -1).contiguous())


def generate_char_lstm(
    prepared: PreparedLMModel, cfg: GenerateConfig, settings: Settings
) -> GenerateOutcome:
    model = as_char_lstm(prepared["model"])
    tokenizer = prepared["tokenizer"]
    eos, n = prepared["eos_id"], cfg["num_return_sequences"]
    prompt_text = resolve_text(cfg["prompt_text"], cfg["prompt_path"], settings)
    device = next(model.parameters()).device
    prompt = torch.tensor([eos, *tokenizer.encode(prompt_text)], device=device)
    generator = make_generator(cfg["seed"], device)
    out = torch.full((n, cfg["max_new_tokens"]), prepared["pad_id"], device=device)
    finished = torch.zeros(n, dtype=torch.bool, device=device)
    model.eval()
    with torch.inference_mode():
        last, state = _prime(model, prompt, n)
        for t in range(cfg["max_new_tokens"]):
            token = sample_next(
                last,
                temperature=cfg["temperature"],
                top_k=cfg["top_k"],
                top_p=cfg["top_p"],
                generator=generator,
            )
            out[:, t] = torch.where(finished, prepared["pad_id"], token)
            if cfg["stop_on_eos"]:
                finished |= token == eos
                if bool(finished.all()):
                    break
            logits, state = model.step(token[:, None], state)
            last = logits[:, -1, :]
    stop_at = eos if cfg["stop_on_eos"] else None
    return generation_outcome(out.tolist(), stop_at, prompt_text, prepared["tokenizer"])
