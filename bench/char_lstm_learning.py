"""How fast and how well the char_lstm backend learns tinyshakespeare in a fixed time budget.

The hand-written loop's tokens/s is measured first, on the same model and batches in this
process; it sets how many steps the budget buys (so the run lasts about the budget when the
service keeps pace) and is the baseline for the tokens/s ratio. It is measured again after
training and the mean of the two is the baseline, so a change in machine load during the run
biases the ratio less. Training then goes through the real backend, as a job would.
Run from the repository root: `python -m bench.char_lstm_learning [--budget 120]`.
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import TypedDict

import torch
from bench.reference import (
    BATCH_SIZE,
    GRAD_CLIP,
    MODEL_SIZE,
    SEQ_LEN,
    THREADS,
    VAL_FRACTION,
    CharData,
    build_model,
    corpus_path,
    count_params,
    hand_optimizer,
    hand_step,
    hand_steps,
    load_char_data,
    machine_load,
    print_summary,
    quiet_callbacks,
    synchronize,
    timed,
    train_windows,
)

from model_trainer.backends.char_lstm.model import as_char_lstm
from model_trainer.backends.registry import get_backend
from model_trainer.contracts.defaults import make_train_config
from model_trainer.contracts.model import ModelTrainConfig, StepMetrics, TrainOutcome
from model_trainer.settings import Settings
from model_trainer.training.data import TokenWindows
from model_trainer.training.device import resolve_device

BENCHMARK = "char_lstm_learning"
LEARNING_RATE = 4e-3
WARMUP_STEPS = 50
MIN_LR_RATIO = 0.1
NUM_EPOCHS = 1_000
HAND_WARMUP_STEPS = 3
TARGET_RATIO = 0.97
TARGET_VAL_LOSS = 1.65
TARGET_BUDGET_S = 120.0


class Options(TypedDict):
    budget_s: float
    baseline_s: float


class BackendRun(TypedDict):
    """What one training through the backend produced, with the last progress report."""

    outcome: TrainOutcome
    last_progress: StepMetrics
    wall_s: float
    params: int


def parse_options() -> Options:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=float, default=TARGET_BUDGET_S, help="seconds to train")
    parser.add_argument(
        "--baseline", type=float, default=10.0, help="seconds per hand-written measurement"
    )
    args = parser.parse_args()
    return {"budget_s": float(args.budget), "baseline_s": float(args.baseline)}


def hand_tokens_per_second(data: CharData, device: torch.device, seconds: float) -> float:
    """Tokens/s of the minimal loop over the backend's batch order, after a few untimed steps."""
    model = build_model(data["tokenizer"].vocab_size, seed=0).to(device)
    optimizer = hand_optimizer(model, LEARNING_RATE)
    windows = train_windows(data["train_tokens"])
    per_epoch = windows.batches_per_epoch
    hand_steps(model, optimizer, windows, device, HAND_WARMUP_STEPS)
    synchronize(device)
    step = HAND_WARMUP_STEPS
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        hand_step(model, optimizer, windows.batch(step // per_epoch, step % per_epoch), device)
        step += 1
    return (step - HAND_WARMUP_STEPS) * windows.tokens_per_batch / timed(device, start)


def val_batches(data: CharData) -> int:
    """How many validation batches cover the whole held-out split."""
    windows = TokenWindows(
        data["val_tokens"], seq_len=SEQ_LEN, batch_size=BATCH_SIZE, seed=0, shuffle=False
    )
    return windows.batches_per_epoch


def train_config(corpus: Path, *, max_steps: int, eval_batches: int) -> ModelTrainConfig:
    """The tuned defaults for `small`; many epochs, so `max_steps` alone ends the run."""
    return make_train_config(
        model_family="char_lstm",
        model_size=MODEL_SIZE,
        corpus_path=str(corpus),
        max_seq_len=SEQ_LEN,
        batch_size=BATCH_SIZE,
        learning_rate=LEARNING_RATE,
        lr_schedule="cosine",
        warmup_steps=WARMUP_STEPS,
        min_lr_ratio=MIN_LR_RATIO,
        grad_clip=GRAD_CLIP,
        val_fraction=VAL_FRACTION,
        num_epochs=NUM_EPOCHS,
        max_steps=max_steps,
        checkpoint_every_steps=None,
        eval_max_batches=eval_batches,
    )


def bench_settings(root: Path) -> Settings:
    """Isolated roots under a temporary folder, like the tests' `settings` fixture."""
    data_root, artifacts_root = root / "data", root / "artifacts"
    data_root.mkdir()
    artifacts_root.mkdir()
    return {
        "redis_url": "redis://127.0.0.1:6379/0",
        "artifacts_root": artifacts_root,
        "data_root": data_root,
        "max_corpus_bytes": 64 * 1024 * 1024,
    }


def run_backend(data: CharData, *, max_steps: int) -> BackendRun:
    """Prepare and train through the registry's char_lstm backend on a copy of the corpus."""
    with tempfile.TemporaryDirectory(prefix="bench-char-lstm-") as tmp:
        settings = bench_settings(Path(tmp))
        corpus = settings["data_root"] / "tinyshakespeare.txt"
        shutil.copyfile(corpus_path(), corpus)
        cfg = train_config(corpus, max_steps=max_steps, eval_batches=val_batches(data))
        backend = get_backend("char_lstm")
        prepared = backend.prepare(cfg, settings, tokenizer=data["tokenizer"])
        reports: list[StepMetrics] = []
        callbacks = quiet_callbacks()
        callbacks["progress"] = reports.append
        start = time.perf_counter()
        outcome = backend.train(
            cfg,
            settings,
            run_dir=str(settings["artifacts_root"] / "runs" / "bench"),
            prepared=prepared,
            callbacks=callbacks,
        )
        return {
            "outcome": outcome,
            "last_progress": reports[-1],
            "wall_s": time.perf_counter() - start,
            "params": count_params(as_char_lstm(prepared["model"])),
        }


def verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def report(run: BackendRun, before: float, after: float, budget_s: float) -> None:
    """Print the figures, then the summary lines bench/run.py collects.

    The ratio uses the tokens/s the trainer reports (its own definition of training time);
    the end-to-end figure, from this process's clock around the whole `train` call (setup,
    every validation, saving), is printed beside it as a check on that definition.
    """
    outcome, last = run["outcome"], run["last_progress"]
    baseline = (before + after) / 2
    ours = last["tokens_per_second"]
    end_to_end = outcome["tokens_seen"] / run["wall_s"]
    val = math.inf if outcome["val_loss"] is None else outcome["val_loss"]
    ratio_ok = verdict(ours / baseline >= TARGET_RATIO)
    val_ok = verdict(val <= TARGET_VAL_LOSS)
    print(f"params: {run['params']:,}")
    print(f"steps: {outcome['steps']:,} ({outcome['epochs_completed']} epochs completed)")
    print(
        f"elapsed: {last['elapsed_s']:.1f} s to the last step (budget {budget_s:.0f} s), "
        f"{run['wall_s']:.1f} s for the whole train call"
    )
    print(f"tokens/s hand-written: {before:,.0f} before, {after:,.0f} after, mean {baseline:,.0f}")
    print(f"tokens/s ours, as the trainer reports it: {ours:,.0f}  ratio {ours / baseline:.4f}")
    print(f"tokens/s ours, end to end: {end_to_end:,.0f}  ratio {end_to_end / baseline:.4f}")
    print(f"ratio target >= {TARGET_RATIO}  {ratio_ok}")
    print(f"validation loss: {val:.4f} nats/char  target <= {TARGET_VAL_LOSS}  {val_ok}")
    summarize(ours, baseline, val, last["elapsed_s"])


def summarize(ours: float, baseline: float, val: float, elapsed_s: float) -> None:
    """The machine-readable lines; the loss target is stated for the full 120 s budget."""
    ratio = ours / baseline
    print_summary(BENCHMARK, "tokens/s ours", f"{ours:,.0f}", "-", None)
    print_summary(BENCHMARK, "tokens/s hand-written", f"{baseline:,.0f}", "-", None)
    print_summary(
        BENCHMARK,
        "tokens/s ratio ours/hand",
        f"{ratio:.4f}",
        f">= {TARGET_RATIO}",
        ratio >= TARGET_RATIO,
    )
    print_summary(
        BENCHMARK,
        f"val loss nats/char after {elapsed_s:.0f} s",
        f"{val:.4f}",
        f"<= {TARGET_VAL_LOSS} at {TARGET_BUDGET_S:.0f} s",
        val <= TARGET_VAL_LOSS,
    )


def main() -> None:
    torch.set_num_threads(THREADS)
    opts = parse_options()
    data = load_char_data(corpus_path())
    device = resolve_device("auto")
    threads = torch.get_num_threads()
    print(f"char_lstm_learning: device {device}, {threads} threads, {machine_load()}", flush=True)
    before = hand_tokens_per_second(data, device, opts["baseline_s"])
    tokens_per_batch = BATCH_SIZE * SEQ_LEN
    max_steps = max(1, round(opts["budget_s"] * before / tokens_per_batch))
    print(
        f"hand-written: {before:,.0f} tokens/s, so max_steps {max_steps:,} "
        f"for a {opts['budget_s']:.0f} s budget",
        flush=True,
    )
    run = run_backend(data, max_steps=max_steps)
    print(f"trained; {machine_load()}", flush=True)
    after = hand_tokens_per_second(data, device, opts["baseline_s"])
    report(run, before, after, opts["budget_s"])


if __name__ == "__main__":
    main()
