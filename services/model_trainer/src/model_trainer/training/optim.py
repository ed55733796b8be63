"""The optimizer and learning-rate schedule every backend trains with."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.optim import AdamW
from torch.optim.lr_scheduler import LambdaLR

from model_trainer.contracts.model import LRSchedule
from model_trainer.contracts.train_config import ModelTrainConfig

# Where PyTorch has a fused AdamW kernel; elsewhere (MPS) its default implementation runs.
FUSED_DEVICES = ("cuda", "cpu")


def make_optimizer(model: nn.Module, cfg: ModelTrainConfig, device: torch.device) -> AdamW:
    """AdamW; matrices decay, biases/norms/embeddings' 1-D params don't.

    The fused kernel on CUDA and on the CPU: PyTorch's CPU default updates one parameter at a
    time in about ten elementwise ops each, some 5% of a GPT-2 `nano` step on two cores."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg["weight_decay"]},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return AdamW(
        groups,
        lr=cfg["learning_rate"],
        betas=(0.9, cfg["beta2"]),
        fused=device.type in FUSED_DEVICES,
    )


class WarmupCosine:
    """Linear warmup then cosine decay to `min_ratio`; a plain object so its state is JSON."""

    def __init__(self, *, kind: LRSchedule, warmup: int, total: int, min_ratio: float) -> None:
        self.kind = kind
        self.warmup = warmup
        self.total = total
        self.min_ratio = min_ratio

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        if self.kind == "constant":
            return 1.0
        decay_steps = max(1, self.total - self.warmup)
        progress = min(1.0, (step - self.warmup) / decay_steps)
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_scheduler(
    optimizer: torch.optim.Optimizer,
    *,
    kind: LRSchedule,
    warmup: int,
    total: int,
    min_ratio: float,
) -> LambdaLR:
    schedule = WarmupCosine(kind=kind, warmup=warmup, total=total, min_ratio=min_ratio)
    return LambdaLR(optimizer, schedule)
