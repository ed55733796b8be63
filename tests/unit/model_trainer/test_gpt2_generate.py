"""gpt2 generation: batched sampling over a KV cache, seeded, stopping at eos, and longer
than the model's context."""

from __future__ import annotations

import pytest
import torch
from tests.conftest import SAMPLE_TEXT

from model_trainer.backends.causal_lm import prompt_budget
from model_trainer.backends.gpt2 import BACKEND as GPT2_BACKEND
from model_trainer.backends.gpt2 import as_gpt2
from model_trainer.contracts.defaults import make_generate_config
from model_trainer.contracts.model import PreparedLMModel
from model_trainer.contracts.train_config import TRAIN_DEFAULTS, make_train_config
from model_trainer.settings import Settings
from model_trainer.tokenizers.char import CharTokenizer

CONTEXT = 128  # the tiny preset's


@pytest.fixture
def prepared(settings: Settings) -> PreparedLMModel:
    """A seeded, untrained tiny gpt2: its samples are noise, but exactly reproducible."""
    cfg = make_train_config(
        model_family="gpt2",
        model_size="tiny",
        corpus_path=str(settings["data_root"] / "unused.txt"),
        options={**TRAIN_DEFAULTS, "device": "cpu"},
    )
    return GPT2_BACKEND.prepare(
        cfg, settings, tokenizer=CharTokenizer.build(SAMPLE_TEXT, "char-test")
    )


def _greedy_without_cache(prepared: PreparedLMModel, prompt: str, steps: int) -> list[int]:
    """What generation must give at top_k=1: the whole window recomputed for every token,
    the window restarting from its last half when it fills the context."""
    model = as_gpt2(prepared["model"]).eval()
    ids = [prepared["eos_id"], *prepared["tokenizer"].encode(prompt)]
    window = ids[-prompt_budget(CONTEXT, steps) :]
    new: list[int] = []
    with torch.no_grad():
        for _ in range(steps):
            token = int(model(torch.tensor([window]))[0, -1].argmax())
            new.append(token)
            window = [*window, token]
            if len(window) > CONTEXT:
                window = window[-(CONTEXT // 2) :]
    return new


def test_prompt_budget_leaves_room_for_the_new_tokens_but_keeps_half_a_context() -> None:
    assert prompt_budget(128, 10) == 118
    assert prompt_budget(128, 64) == 64
    assert prompt_budget(128, 1000) == 64
    assert prompt_budget(1, 5) == 1


@pytest.mark.parametrize(
    ("prompt", "steps"),
    [
        ("Or to", 25),  # all in one cache
        ("Or to", 2 * CONTEXT + 10),  # the window fills and restarts twice
        (SAMPLE_TEXT[:300], 12),  # a prompt longer than the context keeps its last tokens
    ],
)
def test_cached_batched_generation_matches_recomputing_every_window(
    settings: Settings, prepared: PreparedLMModel, prompt: str, steps: int
) -> None:
    cfg = make_generate_config(
        prompt_text=prompt,
        max_new_tokens=steps,
        top_k=1,
        seed=0,
        stop_on_eos=False,
        num_return_sequences=2,
    )
    out = GPT2_BACKEND.generate(prepared=prepared, cfg=cfg, settings=settings)
    expected = prompt + prepared["tokenizer"].decode(_greedy_without_cache(prepared, prompt, steps))
    assert out["outputs"] == [expected, expected]
    assert out["new_tokens"] == [steps, steps]
    assert out["finished_on_eos"] == [False, False]


def test_the_same_seed_gives_the_same_text(settings: Settings, prepared: PreparedLMModel) -> None:
    cfg = make_generate_config(
        prompt_text="To be", max_new_tokens=40, seed=7, num_return_sequences=3, top_k=10, top_p=0.9
    )
    first = GPT2_BACKEND.generate(prepared=prepared, cfg=cfg, settings=settings)
    assert GPT2_BACKEND.generate(prepared=prepared, cfg=cfg, settings=settings) == first
    assert len(first["outputs"]) == 3
    assert all(text.startswith("To be") for text in first["outputs"])
    assert len(set(first["outputs"])) == 3  # sequences sample independently
    other = GPT2_BACKEND.generate(prepared=prepared, cfg={**cfg, "seed": 8}, settings=settings)
    assert other["outputs"] != first["outputs"]


def test_generation_stops_each_sequence_at_eos(
    settings: Settings, prepared: PreparedLMModel
) -> None:
    hf = as_gpt2(prepared["model"]).hf
    eos = prepared["eos_id"]
    with torch.no_grad():  # make eos the only likely token after any input
        direction = torch.zeros(hf.config.n_embd)
        direction[0] = 100.0
        hf.transformer.wte.weight[eos] = direction
        hf.transformer.ln_f.weight.zero_()
        hf.transformer.ln_f.bias.copy_(direction)
    cfg = make_generate_config(prompt_text="To", max_new_tokens=10, seed=1, num_return_sequences=2)
    out = GPT2_BACKEND.generate(prepared=prepared, cfg=cfg, settings=settings)
    assert out == {"outputs": ["To", "To"], "new_tokens": [0, 0], "finished_on_eos": [True, True]}
    keep_going = GPT2_BACKEND.generate(
        prepared=prepared, cfg={**cfg, "stop_on_eos": False}, settings=settings
    )
    assert keep_going["new_tokens"] == [10, 10]
    assert keep_going["finished_on_eos"] == [False, False]


def test_the_prompt_can_come_from_a_file(settings: Settings, prepared: PreparedLMModel) -> None:
    path = settings["data_root"] / "prompt.txt"
    path.write_text("Whether")
    cfg = make_generate_config(prompt_path=str(path), max_new_tokens=5, seed=0)
    out = GPT2_BACKEND.generate(prepared=prepared, cfg=cfg, settings=settings)
    assert out["outputs"][0].startswith("Whether")
    assert out["new_tokens"] == [5]
