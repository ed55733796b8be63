"""Mean next-token loss over held-out windows, with one host sync at the end."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from model_trainer.training.data import TokenWindows
from model_trainer.training.device import autocast

LossFn = Callable[[Tensor, Tensor], Tensor]


def evaluate_loss(
    model: nn.Module,
    windows: TokenWindows,
    *,
    loss_fn: LossFn,
    device: torch.device,
    bf16: bool,
    max_batches: int | None,
) -> float:
    """Average of per-batch mean losses over the first `max_batches` batches in fixed order."""
    count = windows.batches_per_epoch
    if max_batches is not None:
        count = min(count, max_batches)
    was_training = model.training
    model.eval()
    total = torch.zeros((), device=device)
    with torch.inference_mode():
        for index in range(count):
            inputs, targets = windows.batch(0, index)
            with autocast(device, bf16=bf16):
                logits: Tensor = model(inputs.to(device))
                total += loss_fn(logits, targets.to(device)).float()
    model.train(was_training)
    return float(total.item()) / count


def cross_entropy_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean next-token cross-entropy over every position."""
    return nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
