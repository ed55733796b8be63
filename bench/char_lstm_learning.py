"""How fast and how well the default char_lstm recipe learns tinyshakespeare in a time budget.

The recipe is the one a train request naming only family, size (`small`) and corpus gets: the
family's defaults (contracts/train_config.train_defaults), plus the time budget and what only a
measurement needs (many epochs so the budget alone ends the run, no checkpoints, a progress
report every 10 steps, validation over the whole held-out split).

Training goes through the real backend, as a job would, with the loop's `time_budget_s`
ending the run and sizing the cosine schedule from the measured pace. The loop's speed is then
compared with the hand-written loop's on the recipe's shape and precision, as bench/loop_overhead
does it: fresh BaseTrainers and the minimal loop take turns at 10 steps each, alternating who
goes first, and the figure is the median of the per-round ratios. This machine's speed drifts
by a quarter over minutes (other tenants), so only pieces timed side by side compare; the
tokens/s of the training itself are printed beside them.
Run from the repository root: `python -m bench.char_lstm_learning [--budget 180]`.
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import tempfile
import time
from itertools import pairwise
from pathlib import Path
from typing import TypedDict

import torch
from bench.loop_overhead import build_contestants, measure
from bench.reference import (
    MODEL_SIZE,
    THREADS,
    CharData,
    corpus_path,
    count_params,
    load_char_data,
    machine_load,
    print_summary,
    quiet_callbacks,
)
from torch import nn

from model_trainer.backends.char_lstm import as_char_lstm
from model_trainer.backends.presets import CHAR_LSTM_SIZES
from model_trainer.backends.registry import get_backend
from model_trainer.contracts.model import StepMetrics, TrainOutcome
from model_trainer.contracts.train_config import (
    ModelTrainConfig,
    make_train_config,
    train_defaults,
)
from model_trainer.settings import Settings, load_settings
from model_trainer.storage.corpora import read_corpus
from model_trainer.training.data import TokenWindows
from model_trainer.training.device import resolve_device, uses_bf16
from model_trainer.training.evaluation import cross_entropy_loss, evaluate_loss

BENCHMARK = "char_lstm_learning"
# What a char_lstm train request gets when it leaves every option out.
RECIPE = train_defaults("char_lstm")
SEQ_LEN = RECIPE["max_seq_len"]
BATCH_SIZE = RECIPE["batch_size"]
NUM_EPOCHS = 1_000
CHUNK_STEPS = 10
MIN_BUDGET_S = 5.0
TARGET_RATIO = 0.97
TARGET_VAL_LOSS = 1.50
TARGET_BUDGET_S = 180.0


class Options(TypedDict):
    budget_s: float
    rounds: int


class BackendRun(TypedDict):
    """What one training through the backend produced, with when each progress report came."""

    outcome: TrainOutcome
    reports: list[tuple[float, StepMetrics]]
    wall_s: float
    params: int
    val_loss_fp32: float


class Figures(TypedDict):
    """Tokens/s are medians of 10-step pieces unless named an average; loss in nats/char."""

    hand: float
    ours: float
    ours_reported: float
    ours_end_to_end: float
    ratio: float
    val_loss: float
    elapsed_s: float


class ProgressClock:
    """A progress callback that notes the time of each report, to time the steps between."""

    def __init__(self) -> None:
        self.reports: list[tuple[float, StepMetrics]] = []

    def __call__(self, metrics: StepMetrics) -> None:
        self.reports.append((time.perf_counter(), metrics))


def parse_options() -> Options:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=float, default=TARGET_BUDGET_S, help="seconds to train")
    parser.add_argument(
        "--rounds", type=int, default=15, help="rounds of the side-by-side speed comparison"
    )
    args = parser.parse_args()
    budget = float(args.budget)
    if budget < MIN_BUDGET_S:
        parser.error(f"--budget must be >= {MIN_BUDGET_S:.0f} seconds, got {budget}")
    return {"budget_s": budget, "rounds": int(args.rounds)}


def speed_ratios(data: CharData, device: torch.device, rounds: int) -> list[float]:
    """Per-round hand time / BaseTrainer time (tokens/s ours / hand) on the recipe's batches."""
    windows = TokenWindows(
        data["train_tokens"], seq_len=SEQ_LEN, batch_size=BATCH_SIZE, seed=0, shuffle=True
    )
    contestants = build_contestants(
        windows,
        data["tokenizer"].vocab_size,
        learning_rate=RECIPE["learning_rate"],
        bf16=uses_bf16(RECIPE["precision"], device),
    )
    ratios = measure(contestants, {"rounds": rounds, "steps": CHUNK_STEPS})
    return [1.0 / ratio for ratio in ratios]


def trainer_rates(reports: list[tuple[float, StepMetrics]]) -> list[float]:
    """Tokens/s between consecutive progress reports.

    A piece that holds a per-epoch validation is slow; the median leaves it out like any other
    outlier, so the figure is training speed, as the hand-written loop's is.
    """
    tokens_per_batch = BATCH_SIZE * SEQ_LEN
    return [
        (later["step"] - earlier["step"]) * tokens_per_batch / (t_later - t_earlier)
        for (t_earlier, earlier), (t_later, later) in pairwise(reports)
    ]


def val_batches(data: CharData) -> int:
    """How many validation batches cover the whole held-out split."""
    windows = TokenWindows(
        data["val_tokens"], seq_len=SEQ_LEN, batch_size=BATCH_SIZE, seed=0, shuffle=False
    )
    return windows.batches_per_epoch


def train_config(corpus: Path, *, budget_s: float, eval_batches: int) -> ModelTrainConfig:
    """The default recipe; many epochs, so the time budget alone ends the run."""
    return make_train_config(
        model_family="char_lstm",
        model_size=MODEL_SIZE,
        corpus_path=str(corpus),
        options={
            **RECIPE,
            "num_epochs": NUM_EPOCHS,
            "time_budget_s": budget_s,
            "log_every_steps": CHUNK_STEPS,
            "checkpoint_every_steps": None,
            "eval_max_batches": eval_batches,
        },
    )


def bench_settings(root: Path) -> Settings:
    """Isolated roots under a temporary folder; every other setting keeps its default."""
    data_root, artifacts_root = root / "data", root / "artifacts"
    data_root.mkdir()
    artifacts_root.mkdir()
    return load_settings({"DATA_ROOT": str(data_root), "ARTIFACTS_ROOT": str(artifacts_root)})


def run_backend(data: CharData, *, budget_s: float) -> BackendRun:
    """Prepare and train through the registry's char_lstm backend on a copy of the corpus."""
    with tempfile.TemporaryDirectory(prefix="bench-char-lstm-") as tmp:
        settings = bench_settings(Path(tmp))
        corpus = settings["data_root"] / "tinyshakespeare.txt"
        shutil.copyfile(corpus_path(), corpus)
        cfg = train_config(corpus, budget_s=budget_s, eval_batches=val_batches(data))
        backend = get_backend("char_lstm")
        prepared = backend.prepare(cfg, settings, tokenizer=data["tokenizer"])
        clock = ProgressClock()
        callbacks = quiet_callbacks()
        callbacks["progress"] = clock
        start = time.perf_counter()
        outcome = backend.train(
            cfg,
            settings,
            corpus=read_corpus(cfg["corpus_path"], settings),
            run_dir=str(settings["artifacts_root"] / "runs" / "bench"),
            prepared=prepared,
            callbacks=callbacks,
        )
        wall_s = time.perf_counter() - start
        model = as_char_lstm(prepared["model"])
        return {
            "outcome": outcome,
            "reports": clock.reports,
            "wall_s": wall_s,
            "params": count_params(model),
            "val_loss_fp32": fp32_val_loss(model, data),
        }


def fp32_val_loss(model: nn.Module, data: CharData) -> float:
    """The trained model's loss over the whole held-out split in fp32: the loop validates in
    the recipe's precision, and a bf16 figure should not flatter the result."""
    windows = TokenWindows(
        data["val_tokens"], seq_len=SEQ_LEN, batch_size=BATCH_SIZE, seed=0, shuffle=False
    )
    device = next(model.parameters()).device
    return evaluate_loss(
        model, windows, loss_fn=cross_entropy_loss, device=device, bf16=False, max_batches=None
    )


def verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def figures(run: BackendRun, ratios: list[float]) -> Figures:
    """The headline figures: the side-by-side ratio, and the training's own tokens/s."""
    outcome, last = run["outcome"], run["reports"][-1][1]
    ours = statistics.median(trainer_rates(run["reports"]))
    ratio = statistics.median(ratios)
    return {
        "hand": ours / ratio,
        "ours": ours,
        "ours_reported": last["tokens_per_second"],
        "ours_end_to_end": outcome["tokens_seen"] / run["wall_s"],
        "ratio": ratio,
        "val_loss": math.inf if outcome["val_loss"] is None else outcome["val_loss"],
        "elapsed_s": last["elapsed_s"],
    }


def report(run: BackendRun, figs: Figures, budget_s: float) -> None:
    """Print the figures for people; the averages depend on how loaded the machine was."""
    outcome = run["outcome"]
    print(f"params: {run['params']:,}")
    print(f"steps: {outcome['steps']:,} ({outcome['epochs_completed']} epochs completed)")
    print(
        f"elapsed: {figs['elapsed_s']:.1f} s to the last step (budget {budget_s:.0f} s), "
        f"{run['wall_s']:.1f} s for the whole train call"
    )
    print(f"tokens/s ours (median of the training's 10-step pieces): {figs['ours']:,.0f}")
    print(f"tokens/s hand-written at that pace (ours / ratio): {figs['hand']:,.0f}")
    print(
        f"tokens/s ours, averages: {figs['ours_reported']:,.0f} as the trainer reports it, "
        f"{figs['ours_end_to_end']:,.0f} end to end (setup, validations and saving included)"
    )
    ratio_ok = verdict(figs["ratio"] >= TARGET_RATIO)
    val_ok = verdict(figs["val_loss"] <= TARGET_VAL_LOSS)
    print(
        f"ratio ours / hand (median of side-by-side rounds): {figs['ratio']:.4f}  "
        f"target >= {TARGET_RATIO}  {ratio_ok}"
    )
    val = figs["val_loss"]
    print(f"validation loss: {val:.4f} nats/char  target <= {TARGET_VAL_LOSS}  {val_ok}")
    print(f"validation loss recomputed in fp32: {run['val_loss_fp32']:.4f} nats/char")


def summarize(figs: Figures, budget_s: float) -> None:
    """The machine-readable lines; the loss target is stated for the full 180 s budget."""
    print_summary(BENCHMARK, "tokens/s ours", f"{figs['ours']:,.0f}", "-", None)
    print_summary(BENCHMARK, "tokens/s hand-written", f"{figs['hand']:,.0f}", "-", None)
    print_summary(
        BENCHMARK,
        "tokens/s ratio ours/hand",
        f"{figs['ratio']:.4f}",
        f">= {TARGET_RATIO}",
        figs["ratio"] >= TARGET_RATIO,
    )
    print_summary(
        BENCHMARK,
        f"val loss nats/char ({budget_s:.0f} s budget)",
        f"{figs['val_loss']:.4f}",
        f"<= {TARGET_VAL_LOSS} at {TARGET_BUDGET_S:.0f} s",
        figs["val_loss"] <= TARGET_VAL_LOSS,
    )


def main() -> None:
    torch.set_num_threads(THREADS)
    opts = parse_options()
    data = load_char_data(corpus_path())
    device = resolve_device("auto")
    threads = torch.get_num_threads()
    print(f"char_lstm_learning: device {device}, {threads} threads, {machine_load()}", flush=True)
    print(
        f"recipe: char_lstm/{MODEL_SIZE} {CHAR_LSTM_SIZES[MODEL_SIZE]}, seq {SEQ_LEN}, "
        f"batch {BATCH_SIZE}, lr {RECIPE['learning_rate']:g} ({RECIPE['lr_schedule']}, "
        f"warmup {RECIPE['warmup_steps']}, floor x{RECIPE['min_lr_ratio']:g}, "
        f"beta2 {RECIPE['beta2']:g}), "
        f"precision {RECIPE['precision']}",
        flush=True,
    )
    # The loop's time budget ends training and sizes the cosine schedule from the measured pace.
    run = run_backend(data, budget_s=opts["budget_s"])
    print(f"trained; {machine_load()}", flush=True)
    ratios = speed_ratios(data, device, opts["rounds"])
    print(f"done; {machine_load()}", flush=True)
    figs = figures(run, ratios)
    report(run, figs, opts["budget_s"])
    summarize(figs, opts["budget_s"])


if __name__ == "__main__":
    main()
