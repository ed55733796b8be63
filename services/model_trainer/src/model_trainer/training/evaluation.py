"""Mean next-token loss over held-out windows, with one host sync at the end."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from model_trainer.contracts.model import StopCheck
from model_trainer.errors import ModelTrainerError
from model_trainer.training.data import TokenWindows
from model_trainer.training.device import autocast

LossFn = Callable[[Tensor, Tensor], Tensor]


def stop_if_asked(should_stop: StopCheck | None, message: str) -> None:
    """Ends cancelled work with the code that marks its job cancelled rather than failed (the
    name is historical: inference stops with it too)."""
    if should_stop is not None and should_stop():
        raise ModelTrainerError("TRAINING_CANCELLED", message)


def evaluate_loss(
    model: nn.Module,
    windows: TokenWindows,
    *,
    loss_fn: LossFn,
    device: torch.device,
    bf16: bool,
    max_batches: int | None,
    should_stop: StopCheck | None = None,
) -> float:
    """Average of per-batch mean losses over the first `max_batches` batches in fixed order,
    stopping between batches once `should_stop` says so."""
    count = windows.batches_per_epoch
    if max_batches is not None:
        count = min(count, max_batches)
    was_training = model.training
    model.eval()
    total = torch.zeros((), device=device)
    with torch.inference_mode():
        for index in range(count):
            stop_if_asked(should_stop, f"evaluation cancelled after {index} of {count} batches")
            inputs, targets = windows.batch(0, index)
            with autocast(device, bf16=bf16):
                logits: Tensor = model(inputs.to(device))
                total += loss_fn(logits, targets.to(device)).float()
    model.train(was_training)
    return float(total.item()) / count


def cross_entropy_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean next-token cross-entropy over every position."""
    return nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
