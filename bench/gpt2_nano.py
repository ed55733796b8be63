"""GPT-2 `nano` on tinyshakespeare characters: the service's loop against a hand-written one.

nanoGPT's CPU recipe (4 layers x 128 wide x 4 heads, block 64, batch 12, AdamW lr 1e-3 with
100 warm-up steps and cosine decay to 1e-4, weight decay 0.1 on matrices, clipping at 1.0,
no dropout, 2000 steps) trains through the real gpt2 backend, as a job would. A minimal
hand-written PyTorch loop trains an identical copy of the same Hugging Face model on the same
batches in lockstep: the service's progress report every 10 steps runs the hand loop's next
10 steps. Timing 10-step pieces alternately puts both sides under the same machine load, so
the median of the per-piece ratios measures the loop's overhead even on a shared machine (the
pieces that hold an epoch-end validation are outliers the median leaves out). Both sides do
the same arithmetic, so they end with the same weights; the final validation loss covers the
whole held-out 10%.
Run from the repository root: `python -m bench.gpt2_nano [--steps 2000]`.
"""

from __future__ import annotations

import argparse
import copy
import math
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import TypedDict

import torch
from bench.reference import (
    THREADS,
    CharData,
    corpus_path,
    load_char_data,
    machine_load,
    print_summary,
    quiet_callbacks,
    synchronize,
)
from torch import Tensor, nn
from torch.optim import AdamW
from transformers import GPT2LMHeadModel

from model_trainer.backends.gpt2 import as_gpt2
from model_trainer.backends.registry import get_backend
from model_trainer.contracts.model import PreparedLMModel, StepMetrics
from model_trainer.contracts.train_config import TRAIN_DEFAULTS, ModelTrainConfig, make_train_config
from model_trainer.settings import Settings, load_settings
from model_trainer.storage.corpora import read_corpus
from model_trainer.training.data import TokenWindows
from model_trainer.training.device import resolve_device

BENCHMARK = "gpt2_nano"
MODEL_SIZE = "nano"
SEQ_LEN = 64
BATCH_SIZE = 12
LEARNING_RATE = 1e-3
MIN_LR_RATIO = 0.1
WARMUP_STEPS = 100
WEIGHT_DECAY = 0.1
GRAD_CLIP = 1.0
STEPS = 2000
PIECE_STEPS = 10
SEED = 0
TARGET_RATIO = 1.03
TARGET_VAL_LOSS = 1.90


class Options(TypedDict):
    steps: int


class Figures(TypedDict):
    ours_ms: float
    hand_ms: float
    ratio: float
    val_loss: float
    weight_gap: float
    wall_s: float


def parse_options() -> Options:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=STEPS, help="training steps per side")
    args = parser.parse_args()
    return {"steps": int(args.steps)}


def bench_settings(root: Path) -> Settings:
    data_root, artifacts_root = root / "data", root / "artifacts"
    data_root.mkdir()
    artifacts_root.mkdir()
    return load_settings({"DATA_ROOT": str(data_root), "ARTIFACTS_ROOT": str(artifacts_root)})


def val_batches(data: CharData) -> int:
    """How many validation batches cover the whole held-out split."""
    windows = TokenWindows(
        data["val_tokens"], seq_len=SEQ_LEN, batch_size=BATCH_SIZE, seed=SEED, shuffle=False
    )
    return windows.batches_per_epoch


def train_config(corpus: Path, steps: int, eval_batches: int) -> ModelTrainConfig:
    """The recipe above; many epochs, so `max_steps` ends the run; no checkpoints."""
    return make_train_config(
        model_family="gpt2",
        model_size=MODEL_SIZE,
        corpus_path=str(corpus),
        options={
            **TRAIN_DEFAULTS,
            "max_seq_len": SEQ_LEN,
            "batch_size": BATCH_SIZE,
            "learning_rate": LEARNING_RATE,
            "seed": SEED,
            "max_steps": steps,
            "weight_decay": WEIGHT_DECAY,
            "grad_clip": GRAD_CLIP,
            "lr_schedule": "cosine",
            "warmup_steps": WARMUP_STEPS,
            "min_lr_ratio": MIN_LR_RATIO,
            "log_every_steps": PIECE_STEPS,
            "checkpoint_every_steps": None,
            "eval_max_batches": eval_batches,
        },
    )


def learning_rate(step: int, total: int) -> float:
    """nanoGPT's schedule: linear warm-up, then cosine decay to the floor at `total`."""
    if step < WARMUP_STEPS:
        return LEARNING_RATE * (step + 1) / WARMUP_STEPS
    progress = min(1.0, (step - WARMUP_STEPS) / max(1, total - WARMUP_STEPS))
    decay = 0.5 * (1 + math.cos(math.pi * progress))
    return LEARNING_RATE * (MIN_LR_RATIO + (1 - MIN_LR_RATIO) * decay)


class HandLoop:
    """The minimal loop: batch, forward, cross-entropy, backward, clip, AdamW step.

    On CUDA it uses what any hand-written GPU loop would (bf16 autocast, fused AdamW), as
    the service does there, so both sides still do the same arithmetic.
    """

    def __init__(self, model: GPT2LMHeadModel, windows: TokenWindows, total: int) -> None:
        self.model = model
        self.device = next(model.parameters()).device
        cuda = self.device.type == "cuda"
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = AdamW(
            [
                {"params": [p for p in params if p.dim() >= 2], "weight_decay": WEIGHT_DECAY},
                {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
            ],
            lr=LEARNING_RATE,
            fused=cuda,
        )
        self.autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda)
        self.windows = windows
        self.total = total
        self.step = 0

    def run(self, until: int) -> None:
        per_epoch = self.windows.batches_per_epoch
        while self.step < until:
            inputs, targets = self.windows.batch(self.step // per_epoch, self.step % per_epoch)
            with self.autocast:
                logits: Tensor = self.model(inputs.to(self.device)).logits
                loss = nn.functional.cross_entropy(
                    logits.reshape(-1, logits.size(-1)), targets.to(self.device).reshape(-1)
                )
            self.optimizer.zero_grad(set_to_none=True)
            torch.autograd.backward(loss)
            nn.utils.clip_grad_norm_(self.model.parameters(), GRAD_CLIP)
            for group in self.optimizer.param_groups:
                group["lr"] = learning_rate(self.step, self.total)
            self.optimizer.step()
            self.step += 1


class Lockstep:
    """The service's progress callback: closes the service's piece, runs the hand loop's."""

    def __init__(self, hand: HandLoop, device: torch.device) -> None:
        self.hand = hand
        self.device = device
        self.pieces: list[tuple[float, float]] = []  # (ours, hand) ms per step
        self.last_step = 0
        self.piece_start = time.perf_counter()

    def __call__(self, metrics: StepMetrics) -> None:
        synchronize(self.device)
        ours_s = time.perf_counter() - self.piece_start
        steps = metrics["step"] - self.last_step
        start = time.perf_counter()
        self.hand.run(metrics["step"])
        synchronize(self.device)
        hand_s = time.perf_counter() - start
        self.pieces.append((1000 * ours_s / steps, 1000 * hand_s / steps))
        self.last_step = metrics["step"]
        if metrics["step"] % 200 == 0:
            print(
                f"step {metrics['step']:5d}  loss {metrics['loss']:.4f}  "
                f"ms/step ours {self.pieces[-1][0]:6.1f} hand {self.pieces[-1][1]:6.1f}",
                flush=True,
            )
        self.piece_start = time.perf_counter()


def hand_copy(prepared: PreparedLMModel, data: CharData, steps: int) -> HandLoop:
    """An identical copy of the freshly initialised model, on the backend's batches."""
    wrapper = copy.deepcopy(as_gpt2(prepared["model"]))
    wrapper.to(resolve_device("auto")).train()
    model = wrapper.hf
    windows = TokenWindows(
        data["train_tokens"], seq_len=SEQ_LEN, batch_size=BATCH_SIZE, seed=SEED, shuffle=True
    )
    return HandLoop(model, windows, steps)


def weight_gap(a: nn.Module, b: nn.Module) -> float:
    with torch.no_grad():
        return max(
            float((p - q).abs().max()) for p, q in zip(a.parameters(), b.parameters(), strict=True)
        )


def run(data: CharData, steps: int) -> Figures:
    with tempfile.TemporaryDirectory(prefix="bench-gpt2-nano-") as tmp:
        settings = bench_settings(Path(tmp))
        corpus = settings["data_root"] / "tinyshakespeare.txt"
        shutil.copyfile(corpus_path(), corpus)
        cfg = train_config(corpus, steps, val_batches(data))
        backend = get_backend("gpt2")
        prepared = backend.prepare(cfg, settings, tokenizer=data["tokenizer"])
        hand = hand_copy(prepared, data, steps)
        device = resolve_device(cfg["device"])
        lockstep = Lockstep(hand, device)
        callbacks = quiet_callbacks()
        callbacks["progress"] = lockstep
        params = as_gpt2(prepared["model"]).hf.num_parameters()
        print(f"params: {params:,}; {steps} steps per side", flush=True)
        began = time.perf_counter()
        lockstep.piece_start = began
        outcome = backend.train(
            cfg,
            settings,
            corpus=read_corpus(cfg["corpus_path"], settings),
            run_dir=str(settings["artifacts_root"] / "runs" / "bench"),
            prepared=prepared,
            callbacks=callbacks,
        )
        wall = time.perf_counter() - began
    ours = [piece[0] for piece in lockstep.pieces]
    hands = [piece[1] for piece in lockstep.pieces]
    return {
        "ours_ms": statistics.median(ours),
        "hand_ms": statistics.median(hands),
        "ratio": statistics.median(o / h for o, h in lockstep.pieces),
        "val_loss": math.inf if outcome["val_loss"] is None else outcome["val_loss"],
        "weight_gap": weight_gap(as_gpt2(prepared["model"]).hf, hand.model),
        "wall_s": wall,
    }


def verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def report(figs: Figures, steps: int) -> None:
    ratio_ok = figs["ratio"] <= TARGET_RATIO
    loss_ok = figs["val_loss"] <= TARGET_VAL_LOSS
    print(f"wall: {figs['wall_s']:.1f} s for both sides, validations and saving included")
    print(f"ms/step ours (median of {PIECE_STEPS}-step pieces): {figs['ours_ms']:.2f}")
    print(f"ms/step hand-written (median of {PIECE_STEPS}-step pieces): {figs['hand_ms']:.2f}")
    print(
        f"time ratio ours / hand (median of paired pieces): {figs['ratio']:.4f}  "
        f"target <= {TARGET_RATIO}  {verdict(ratio_ok)}"
    )
    print(f"max weight gap ours vs hand after {steps} steps: {figs['weight_gap']:.3g}")
    print(
        f"validation loss: {figs['val_loss']:.4f} nats/char  "
        f"target <= {TARGET_VAL_LOSS}  {verdict(loss_ok)}"
    )
    print_summary(BENCHMARK, "ms/step ours", f"{figs['ours_ms']:.2f}", "-", None)
    print_summary(BENCHMARK, "ms/step hand-written", f"{figs['hand_ms']:.2f}", "-", None)
    print_summary(
        BENCHMARK, "time ratio ours/hand", f"{figs['ratio']:.4f}", f"<= {TARGET_RATIO}", ratio_ok
    )
    print_summary(
        BENCHMARK,
        f"val loss nats/char ({steps} steps)",
        f"{figs['val_loss']:.4f}",
        f"<= {TARGET_VAL_LOSS} at {STEPS} steps",
        loss_ok,
    )


def main() -> None:
    torch.set_num_threads(THREADS)
    opts = parse_options()
    data = load_char_data(corpus_path())
    device = resolve_device("auto")
    print(
        f"{BENCHMARK}: GPT-2 {MODEL_SIZE}, batch {BATCH_SIZE}x{SEQ_LEN}, device {device}, "
        f"{torch.get_num_threads()} threads, {machine_load()}",
        flush=True,
    )
    figs = run(data, opts["steps"])
    print(f"done; {machine_load()}", flush=True)
    report(figs, opts["steps"])


if __name__ == "__main__":
    main()
