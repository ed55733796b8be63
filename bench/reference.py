"""The hand-written reference every benchmark compares against: same corpus, model and batches.

The reference loop is the minimal PyTorch one (batch, forward, cross-entropy, backward, clip,
AdamW step) with nothing else in it, so whatever the service's loop spends beyond it shows up as
a ratio measured in the same process. Benchmarks run from the repository root as modules
(`python -m bench.loop_overhead`), which is how bench/run.py starts them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TypedDict

import torch
from torch import Tensor, nn
from torch.optim import AdamW

from model_trainer.backends.char_lstm import CharLSTMModel
from model_trainer.backends.presets import CHAR_LSTM_SIZES
from model_trainer.contracts.model import StepMetrics, TrainingAlert, TrainingCallbacks
from model_trainer.tokenizers.char import CharTokenizer
from model_trainer.training.data import TokenWindows, split_tokens

DATA_ENV = "BENCH_DATA"
MODEL_SIZE = "small"
SEQ_LEN = 128
BATCH_SIZE = 32
VAL_FRACTION = 0.1
GRAD_CLIP = 1.0
THREADS = 2
# bench/run.py collects the lines that start with this prefix into its table; the fields after
# it are tab-separated: benchmark, figure, value, target, verdict.
SUMMARY_PREFIX = "SUMMARY"


class CharData(TypedDict):
    """The corpus as the backend sees it: a tokenizer over all of it, then a 90/10 split."""

    tokenizer: CharTokenizer
    train_tokens: Tensor
    val_tokens: Tensor


def corpus_path() -> Path:
    """tinyshakespeare from the shared data folder beside the repository, or $BENCH_DATA."""
    override = os.environ.get(DATA_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tinyshakespeare.txt"


def load_char_data(path: Path) -> CharData:
    """Tokenize like the service does: a character tokenizer built on the whole corpus."""
    text = path.read_bytes().decode("utf-8", errors="replace")
    tokenizer = CharTokenizer.build(text, "bench-char")
    tokens = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    train, val = split_tokens(tokens, VAL_FRACTION)
    return {"tokenizer": tokenizer, "train_tokens": train, "val_tokens": val}


def train_windows(tokens: Tensor) -> TokenWindows:
    """The shuffled training batches the backend draws (same seed, so the same order)."""
    return TokenWindows(tokens, seq_len=SEQ_LEN, batch_size=BATCH_SIZE, seed=0, shuffle=True)


def build_model(vocab_size: int, *, seed: int) -> CharLSTMModel:
    """The `small` char-LSTM, seeded so two calls give identical weights."""
    torch.manual_seed(seed)
    return CharLSTMModel(
        {
            "model_family": "char_lstm",
            "model_size": MODEL_SIZE,
            "vocab_size": vocab_size,
            "max_seq_len": SEQ_LEN,
            **CHAR_LSTM_SIZES[MODEL_SIZE],
        }
    )


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def hand_optimizer(model: nn.Module, learning_rate: float) -> AdamW:
    """What a hand-written loop would use: one AdamW group, no weight decay (the job default),
    PyTorch's fused kernel where it has one, as the service's optimizer (training/optim.py)."""
    fused = next(model.parameters()).device.type in ("cpu", "cuda")
    return AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0, fused=fused)


def hand_step(
    model: nn.Module,
    optimizer: AdamW,
    batch: tuple[Tensor, Tensor],
    device: torch.device,
    *,
    bf16: bool = False,
) -> None:
    """One step of the minimal loop; no loss is kept, so nothing waits on the device."""
    inputs, targets = batch
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
        logits: Tensor = model(inputs.to(device, non_blocking=True))
        loss = nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), targets.to(device, non_blocking=True).reshape(-1)
        )
    optimizer.zero_grad(set_to_none=True)
    torch.autograd.backward(loss)
    nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
    optimizer.step()


def hand_steps(
    model: nn.Module,
    optimizer: AdamW,
    windows: TokenWindows,
    device: torch.device,
    steps: int,
    *,
    bf16: bool = False,
) -> None:
    """`steps` steps over the batches BaseTrainer would take from a fresh start, in its order."""
    per_epoch = windows.batches_per_epoch
    for step in range(steps):
        batch = windows.batch(step // per_epoch, step % per_epoch)
        hand_step(model, optimizer, batch, device, bf16=bf16)


def synchronize(device: torch.device) -> None:
    """Wait for queued device work, so a timer read after it covers that work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # cuda-only


def timed(device: torch.device, start: float) -> float:
    """Seconds since `start` once the device has finished."""
    synchronize(device)
    return time.perf_counter() - start


def machine_load() -> str:
    """The load other processes put on the machine: timings taken under load are noisier."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min) {five:.2f} (5 min) on {os.cpu_count()} cores"


def _ignore_heartbeat(now: float) -> None:
    return None


def _never_cancelled() -> bool:
    return False


def _ignore_progress(metrics: StepMetrics) -> None:
    return None


def _ignore_alert(alert: TrainingAlert) -> None:
    return None


def quiet_callbacks() -> TrainingCallbacks:
    """Callbacks that do nothing, so only the loop's own work is timed."""
    return {
        "heartbeat": _ignore_heartbeat,
        "cancelled": _never_cancelled,
        "progress": _ignore_progress,
        "alert": _ignore_alert,
        "prune": None,
    }


def print_summary(
    benchmark: str, figure: str, value: str, target: str, passed: bool | None
) -> None:
    """One machine-readable line for bench/run.py's table; `passed` None means no target."""
    verdict = "-" if passed is None else ("PASS" if passed else "FAIL")
    print("\t".join((SUMMARY_PREFIX, benchmark, figure, value, target, verdict)), flush=True)
