"""What BaseTrainer costs over a minimal hand-written PyTorch loop doing the same steps.

Both train identically initialised copies of the `small` char-LSTM on the same batches, on the
same device, in one process, alternating which goes first each round; the figure is the median
of the per-round time ratios, so load from other processes on the machine mostly cancels out.
Run from the repository root: `python -m bench.loop_overhead [--rounds 25] [--steps 10]`.
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import time
from typing import TypedDict

import torch
from bench.reference import (
    BATCH_SIZE,
    GRAD_CLIP,
    SEQ_LEN,
    THREADS,
    build_model,
    corpus_path,
    hand_optimizer,
    hand_steps,
    load_char_data,
    machine_load,
    print_summary,
    quiet_callbacks,
    timed,
    train_windows,
)
from torch import nn
from torch.optim import AdamW

from model_trainer.contracts.train_config import TRAIN_DEFAULTS, make_train_config
from model_trainer.training.base_trainer import BaseTrainer, LoopConfig, TrainingParts
from model_trainer.training.data import TokenWindows
from model_trainer.training.device import resolve_device
from model_trainer.training.evaluation import cross_entropy_loss
from model_trainer.training.health import HealthThresholds
from model_trainer.training.optim import make_optimizer

BENCHMARK = "loop_overhead"
TARGET_RATIO = 1.03
LEARNING_RATE = 4e-3
LOG_EVERY_STEPS = 10
# The service's default health thresholds: watching gradients is part of the loop measured.
HEALTH: HealthThresholds = {
    "grad_norm_max": TRAIN_DEFAULTS["grad_norm_alert_max"],
    "grad_norm_min": TRAIN_DEFAULTS["grad_norm_alert_min"],
    "val_loss_spike_ratio": TRAIN_DEFAULTS["val_loss_spike_ratio"],
}


class Options(TypedDict):
    rounds: int
    steps: int


class Contestants(TypedDict):
    """The two sides of the comparison: the service's loop parts and the hand loop's."""

    parts: TrainingParts
    hand_model: nn.Module
    hand_optimizer: AdamW
    bf16: bool


def parse_options() -> Options:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=25, help="counted rounds (plus 1 warm-up)")
    parser.add_argument("--steps", type=int, default=10, help="training steps per side per round")
    args = parser.parse_args()
    return {"rounds": int(args.rounds), "steps": int(args.steps)}


def loop_config(steps: int, batches_per_epoch: int, *, bf16: bool) -> LoopConfig:
    """Constant LR, clipping on, nothing but the loop: no validation, no checkpoints."""
    return {
        "num_epochs": math.ceil(steps / batches_per_epoch),
        "max_steps": steps,
        "grad_accum_steps": 1,
        "grad_clip": GRAD_CLIP,
        "lr_schedule": "constant",
        "warmup_steps": 0,
        "min_lr_ratio": 1.0,
        "log_every_steps": LOG_EVERY_STEPS,
        "eval_every_steps": None,
        "eval_max_batches": 1,
        "checkpoint_every_steps": None,
        "keep_checkpoints": 1,
        "keep_best_checkpoints": 1,
        "early_stopping_patience": None,
        "early_stopping_min_delta": 0.0,
        "health": HEALTH,
        "heartbeat_interval_s": 5.0,
        "time_budget_s": None,
        "bf16": bf16,
    }


def build_contestants(
    windows: TokenWindows,
    vocab_size: int,
    *,
    learning_rate: float = LEARNING_RATE,
    bf16: bool = False,
) -> Contestants:
    """Two copies of one initialisation on the same device, both in bf16 autocast or neither.

    BaseTrainer gets the optimizer every backend builds (`make_optimizer`: two AdamW groups),
    the hand loop a plain one-group AdamW; with weight decay 0 both do the same update through
    PyTorch's fused kernel, so the ratio is the loop's own overhead, not an optimizer's.
    """
    device = resolve_device("auto")
    model = build_model(vocab_size, seed=0).to(device)
    hand_model = copy.deepcopy(model)
    parts: TrainingParts = {
        "model": model,
        "optimizer": make_optimizer(
            model,
            make_train_config(
                model_family="char_lstm",
                model_size="small",
                corpus_path="-",
                options={**TRAIN_DEFAULTS, "learning_rate": learning_rate, "weight_decay": 0.0},
            ),
            device,
        ),
        "loss_fn": cross_entropy_loss,
        "train_windows": windows,
        "val_windows": None,
        "device": device,
        "checkpoint_dir": None,
        "metrics_file": None,
    }
    return {
        "parts": parts,
        "hand_model": hand_model,
        "hand_optimizer": hand_optimizer(hand_model, learning_rate),
        "bf16": bf16,
    }


def time_trainer(contestants: Contestants, steps: int) -> float:
    """Seconds for `steps` steps through a fresh BaseTrainer (built before the clock starts)."""
    parts = contestants["parts"]
    config = loop_config(steps, parts["train_windows"].batches_per_epoch, bf16=contestants["bf16"])
    trainer = BaseTrainer(parts, config, quiet_callbacks())
    start = time.perf_counter()
    for _ in trainer.train():
        pass
    return timed(parts["device"], start)


def time_hand(contestants: Contestants, steps: int) -> float:
    """Seconds for the same `steps` batches through the hand-written loop."""
    parts = contestants["parts"]
    start = time.perf_counter()
    hand_steps(
        contestants["hand_model"],
        contestants["hand_optimizer"],
        parts["train_windows"],
        parts["device"],
        steps,
        bf16=contestants["bf16"],
    )
    return timed(parts["device"], start)


def run_round(contestants: Contestants, steps: int, *, trainer_first: bool) -> tuple[float, float]:
    """(BaseTrainer seconds, hand seconds) for one round in the given order."""
    if trainer_first:
        ours = time_trainer(contestants, steps)
        return ours, time_hand(contestants, steps)
    hand = time_hand(contestants, steps)
    return time_trainer(contestants, steps), hand


def max_weight_gap(contestants: Contestants) -> float:
    """Largest weight difference between the two models: ~0 shows both did the same work."""
    ours = contestants["parts"]["model"].parameters()
    hand = contestants["hand_model"].parameters()
    with torch.no_grad():
        return max(float((a - b).abs().max()) for a, b in zip(ours, hand, strict=True))


def measure(contestants: Contestants, opts: Options) -> list[float]:
    """Per-round ratios, after one uncounted warm-up round, alternating who goes first."""
    ratios: list[float] = []
    for index in range(opts["rounds"] + 1):
        trainer_first = index % 2 == 0
        ours, hand = run_round(contestants, opts["steps"], trainer_first=trainer_first)
        label = "warm-up" if index == 0 else f"round {index}"
        first = "BaseTrainer" if trainer_first else "hand"
        print(
            f"{label:>8}: BaseTrainer {ours:7.3f} s  hand {hand:7.3f} s  "
            f"ratio {ours / hand:.4f}  ({first} first)",
            flush=True,
        )
        if index > 0:
            ratios.append(ours / hand)
    return ratios


def main() -> None:
    torch.set_num_threads(THREADS)
    opts = parse_options()
    data = load_char_data(corpus_path())
    windows = train_windows(data["train_tokens"])
    contestants = build_contestants(windows, data["tokenizer"].vocab_size)
    print(
        f"loop_overhead: char-LSTM small, batch {BATCH_SIZE}x{SEQ_LEN}, "
        f"device {contestants['parts']['device']}, {torch.get_num_threads()} threads, "
        f"{opts['rounds']} rounds x {opts['steps']} steps per side, {machine_load()}",
        flush=True,
    )
    ratios = measure(contestants, opts)
    median = statistics.median(ratios)
    passed = median <= TARGET_RATIO
    print(f"max weight gap after all rounds: {max_weight_gap(contestants):.3g}")
    print(
        f"median ratio (BaseTrainer / hand): {median:.4f}  target <= {TARGET_RATIO}  "
        f"{'PASS' if passed else 'FAIL'}"
    )
    print_summary(
        BENCHMARK,
        "median time ratio BaseTrainer/hand",
        f"{median:.4f}",
        f"<= {TARGET_RATIO}",
        passed,
    )


if __name__ == "__main__":
    main()
