from __future__ import annotations

import torch

from model_trainer.backends.causal_lm import make_generator, sample_next

CPU = torch.device("cpu")


def _draws(logits: torch.Tensor, *, top_k: int = 0, top_p: float = 1.0, n: int = 400) -> set[int]:
    generator = make_generator(0, CPU)
    batch = logits.expand(n, -1)
    return set(
        sample_next(batch, temperature=1.0, top_k=top_k, top_p=top_p, generator=generator).tolist()
    )


def test_top_k_keeps_only_the_k_most_likely() -> None:
    logits = torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0]])
    assert _draws(logits, top_k=2) == {3, 4}
    assert _draws(logits) == {0, 1, 2, 3, 4}
    assert _draws(logits, top_k=5) == {0, 1, 2, 3, 4}


def test_top_p_keeps_the_smallest_set_covering_p() -> None:
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    assert _draws(probs.log(), top_p=0.7) == {0, 1}
    assert _draws(probs.log(), top_p=0.5) == {0}
    assert _draws(probs.log(), top_p=0.81) == {0, 1, 2}


def test_low_temperature_is_greedy() -> None:
    logits = torch.tensor([[1.0, 1.5, 1.2]]).expand(50, -1)
    generator = make_generator(3, CPU)
    drawn = sample_next(logits, temperature=1e-4, top_k=0, top_p=1.0, generator=generator)
    assert set(drawn.tolist()) == {1}


def test_seeded_generators_repeat_and_unseeded_ones_differ() -> None:
    logits = torch.zeros(1, 1000)

    def draw(seed: int | None) -> list[int]:
        generator = make_generator(seed, CPU)
        return sample_next(
            logits.expand(20, -1), temperature=1.0, top_k=0, top_p=1.0, generator=generator
        ).tolist()

    assert draw(5) == draw(5)
    assert draw(None) != draw(None)
