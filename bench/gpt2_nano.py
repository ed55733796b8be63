"""GPT-2 `nano` on tinyshakespeare characters: the service against a minimal plain-PyTorch GPT.

nanoGPT's CPU recipe (4 layers x 128 wide x 4 heads, block 64, batch 12, AdamW lr 1e-3 with
beta2 0.99, 100 warm-up steps and cosine decay to 1e-4, weight decay 0.1 on matrices, clipping
at 1.0, no dropout, 2000 steps) trains through the real gpt2 backend, as a job would. The
reference is `bench/minimal_gpt.py` (what anyone would write by hand: fused QKV projection,
causal SDPA, tied embeddings) in a minimal loop with PyTorch's default AdamW, started from the
service's initial weights and trained on the same batches in lockstep: the service's progress
report every 10 steps runs the reference's next 10 steps. Timing 10-step pieces alternately
puts both sides under the same machine load, so the median of the per-piece ratios compares
step times even on a shared machine (the pieces that hold an epoch-end validation are outliers
the median leaves out).

Totals: the service's is everything `backend.train` does (its loop, epoch-end and final
validations over the whole held-out 10%, saving the run) less the time spent in the reference's
pieces; the reference's is its pieces plus one final validation over the same batches. Neither
counts worker start or the job's bookkeeping around `backend.train`. The saved run is loaded
back with `AutoModelForCausalLM.from_pretrained` and its logits compared with the service's.
Run from the repository root: `python -m bench.gpt2_nano [--steps 2000]`.
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import TypedDict

import torch
from bench.minimal_gpt import MinimalGPT
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
from transformers import AutoModelForCausalLM, GPT2LMHeadModel

from model_trainer.backends.gpt2 import as_gpt2
from model_trainer.backends.registry import get_backend
from model_trainer.contracts.model import StepMetrics
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
BETA2 = 0.99
GRAD_CLIP = 1.0
STEPS = 2000
PIECE_STEPS = 10
SEED = 0
TARGET_RATIO = 1.00
TARGET_TOTAL_RATIO = 1.05
TARGET_VAL_LOSS = 1.90
TARGET_VAL_GAP = 0.01
TARGET_LOGIT_GAP = 1e-5


class Options(TypedDict):
    steps: int
    threads: int


class Figures(TypedDict):
    ours_ms: float
    ref_ms: float
    ratio: float
    ours_total_s: float
    ref_total_s: float
    val_loss: float
    ref_val_loss: float
    logit_gap: float


def parse_options() -> Options:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=STEPS, help="training steps per side")
    parser.add_argument(
        "--threads",
        type=int,
        default=THREADS,
        help="torch threads (1 keeps an oversubscribed machine's timings meaningful)",
    )
    args = parser.parse_args()
    return {"steps": int(args.steps), "threads": int(args.threads)}


def bench_settings(root: Path) -> Settings:
    data_root, artifacts_root = root / "data", root / "artifacts"
    data_root.mkdir()
    artifacts_root.mkdir()
    return load_settings({"DATA_ROOT": str(data_root), "ARTIFACTS_ROOT": str(artifacts_root)})


def val_windows(data: CharData) -> TokenWindows:
    """The held-out split in fixed order, as the service's validation reads it."""
    return TokenWindows(
        data["val_tokens"], seq_len=SEQ_LEN, batch_size=BATCH_SIZE, seed=SEED, shuffle=False
    )


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
            "beta2": BETA2,
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


def reference_model(hf: GPT2LMHeadModel) -> MinimalGPT:
    """The minimal GPT holding the service's initial weights (GPT-2's Conv1D stores [in, out],
    nn.Linear [out, in]), so both sides start equal and only their code differs."""
    config = hf.config
    model = MinimalGPT(
        {
            "vocab_size": config.vocab_size,
            "block_size": config.n_positions,
            "n_layer": config.n_layer,
            "n_embd": config.n_embd,
            "n_head": config.n_head,
        }
    )
    weights = {
        name: tensor.t() if _is_conv1d_weight(name) else tensor
        for name, tensor in hf.transformer.state_dict().items()
    }
    weights["lm_head.weight"] = weights["wte.weight"]
    model.load_state_dict(weights)
    return model


def _is_conv1d_weight(name: str) -> bool:
    return name.endswith(".weight") and (".attn.c_" in name or ".mlp.c_" in name)


class ReferenceLoop:
    """The minimal loop: batch, forward, cross-entropy, backward, clip, AdamW step.

    PyTorch's default AdamW, as a hand-written loop would use (nanoGPT fuses it on CUDA only);
    on CUDA also bf16 autocast, as the service does there.
    """

    def __init__(self, model: MinimalGPT, windows: TokenWindows, total: int) -> None:
        self.device = resolve_device("auto")
        self.model = model.to(self.device).train()
        cuda = self.device.type == "cuda"
        params = list(model.parameters())
        self.optimizer = AdamW(
            [
                {"params": [p for p in params if p.dim() >= 2], "weight_decay": WEIGHT_DECAY},
                {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
            ],
            lr=LEARNING_RATE,
            betas=(0.9, BETA2),
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
                logits: Tensor = self.model(inputs.to(self.device))
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

    def validate(self, windows: TokenWindows) -> float:
        """Mean loss over every held-out batch, as the service's final validation."""
        self.model.eval()
        total = torch.zeros((), device=self.device)
        with torch.inference_mode(), self.autocast:
            for index in range(windows.batches_per_epoch):
                inputs, targets = windows.batch(0, index)
                logits: Tensor = self.model(inputs.to(self.device))
                total += nn.functional.cross_entropy(
                    logits.reshape(-1, logits.size(-1)), targets.to(self.device).reshape(-1)
                ).float()
        return float(total.item()) / windows.batches_per_epoch


class Lockstep:
    """The service's progress callback: closes the service's piece, runs the reference's."""

    def __init__(self, reference: ReferenceLoop, device: torch.device) -> None:
        self.reference = reference
        self.device = device
        self.pieces: list[tuple[float, float]] = []  # (ours, reference) ms per step
        self.reference_s = 0.0
        self.last_step = 0
        self.piece_start = time.perf_counter()

    def __call__(self, metrics: StepMetrics) -> None:
        synchronize(self.device)
        ours_s = time.perf_counter() - self.piece_start
        steps = metrics["step"] - self.last_step
        start = time.perf_counter()
        self.reference.run(metrics["step"])
        synchronize(self.device)
        ref_s = time.perf_counter() - start
        self.reference_s += ref_s
        self.pieces.append((1000 * ours_s / steps, 1000 * ref_s / steps))
        self.last_step = metrics["step"]
        if metrics["step"] % 200 == 0:
            print(
                f"step {metrics['step']:5d}  loss {metrics['loss']:.4f}  "
                f"ms/step ours {self.pieces[-1][0]:6.1f} reference {self.pieces[-1][1]:6.1f}",
                flush=True,
            )
        self.piece_start = time.perf_counter()


def logit_gap(ours: nn.Module, run_dir: Path, windows: TokenWindows) -> float:
    """Largest logit difference between the trained model and its run directory loaded by
    Hugging Face's Auto class, on the CPU in float32, over one held-out batch."""
    loaded = AutoModelForCausalLM.from_pretrained(run_dir)  # loads in eval mode
    if not isinstance(loaded, GPT2LMHeadModel):
        raise SystemExit(f"{run_dir} loaded as {type(loaded).__name__}, not GPT2LMHeadModel")
    ours.to("cpu").eval()
    inputs = windows.batch(0, 0)[0]
    with torch.no_grad():
        theirs: Tensor = loaded(inputs).logits
        mine: Tensor = ours(inputs)
    return float((theirs - mine).abs().max())


def run(data: CharData, steps: int) -> Figures:
    with tempfile.TemporaryDirectory(prefix="bench-gpt2-nano-") as tmp:
        settings = bench_settings(Path(tmp))
        corpus = settings["data_root"] / "tinyshakespeare.txt"
        shutil.copyfile(corpus_path(), corpus)
        cfg = train_config(corpus, steps, val_windows(data).batches_per_epoch)
        backend = get_backend("gpt2")
        prepared = backend.prepare(cfg, settings, tokenizer=data["tokenizer"])
        hf = as_gpt2(prepared["model"]).hf
        windows = TokenWindows(
            data["train_tokens"], seq_len=SEQ_LEN, batch_size=BATCH_SIZE, seed=SEED, shuffle=True
        )
        reference = ReferenceLoop(reference_model(hf), windows, steps)
        lockstep = Lockstep(reference, resolve_device(cfg["device"]))
        callbacks = quiet_callbacks()
        callbacks["progress"] = lockstep
        print(f"params: {hf.num_parameters():,}; {steps} steps per side", flush=True)
        run_dir = settings["artifacts_root"] / "runs" / "bench"
        began = time.perf_counter()
        lockstep.piece_start = began
        outcome = backend.train(
            cfg,
            settings,
            corpus=read_corpus(cfg["corpus_path"], settings),
            run_dir=str(run_dir),
            prepared=prepared,
            callbacks=callbacks,
        )
        ours_total = time.perf_counter() - began - lockstep.reference_s
        start = time.perf_counter()
        ref_val = reference.validate(val_windows(data))
        ref_total = lockstep.reference_s + time.perf_counter() - start
        gap = logit_gap(as_gpt2(prepared["model"]), run_dir, val_windows(data))
    return {
        "ours_ms": statistics.median(piece[0] for piece in lockstep.pieces),
        "ref_ms": statistics.median(piece[1] for piece in lockstep.pieces),
        "ratio": statistics.median(o / r for o, r in lockstep.pieces),
        "ours_total_s": ours_total,
        "ref_total_s": ref_total,
        "val_loss": math.inf if outcome["val_loss"] is None else outcome["val_loss"],
        "ref_val_loss": ref_val,
        "logit_gap": gap,
    }


def verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def report(figs: Figures, steps: int) -> None:
    ratio_ok = figs["ratio"] <= TARGET_RATIO
    total_ratio = figs["ours_total_s"] / figs["ref_total_s"]
    total_ok = total_ratio <= TARGET_TOTAL_RATIO
    val_gap = figs["val_loss"] - figs["ref_val_loss"]
    gap_ok = abs(val_gap) <= TARGET_VAL_GAP
    loss_ok = figs["val_loss"] <= TARGET_VAL_LOSS
    logits_ok = figs["logit_gap"] <= TARGET_LOGIT_GAP
    print(f"ms/step ours (median of {PIECE_STEPS}-step pieces): {figs['ours_ms']:.2f}")
    print(f"ms/step reference (median of {PIECE_STEPS}-step pieces): {figs['ref_ms']:.2f}")
    print(
        f"time ratio ours / reference (median of paired pieces): {figs['ratio']:.4f}  "
        f"target <= {TARGET_RATIO}  {verdict(ratio_ok)}"
    )
    print(
        f"total s ours {figs['ours_total_s']:.1f} (loop, validations, saving), reference "
        f"{figs['ref_total_s']:.1f} (loop, final validation): ratio {total_ratio:.4f}  "
        f"target <= {TARGET_TOTAL_RATIO}  {verdict(total_ok)}"
    )
    print(
        f"validation loss ours {figs['val_loss']:.4f}, reference {figs['ref_val_loss']:.4f} "
        f"nats/char: gap {val_gap:+.4f}  target within {TARGET_VAL_GAP}  {verdict(gap_ok)}; "
        f"ours target <= {TARGET_VAL_LOSS} at {STEPS} steps  {verdict(loss_ok)}"
    )
    print(
        f"max |logit| gap ours vs AutoModelForCausalLM on the run directory: "
        f"{figs['logit_gap']:.3g}  target <= {TARGET_LOGIT_GAP}  {verdict(logits_ok)}"
    )
    print_summary(BENCHMARK, "ms/step ours", f"{figs['ours_ms']:.2f}", "-", None)
    print_summary(BENCHMARK, "ms/step reference", f"{figs['ref_ms']:.2f}", "-", None)
    print_summary(
        BENCHMARK, "ms/step ratio ours/ref", f"{figs['ratio']:.4f}", f"<= {TARGET_RATIO}", ratio_ok
    )
    print_summary(
        BENCHMARK,
        "total ratio ours/ref",
        f"{total_ratio:.4f}",
        f"<= {TARGET_TOTAL_RATIO}",
        total_ok,
    )
    print_summary(
        BENCHMARK, "val loss gap ours-ref", f"{val_gap:+.4f}", f"+-{TARGET_VAL_GAP}", gap_ok
    )
    print_summary(
        BENCHMARK,
        f"val loss nats/char ({steps} steps)",
        f"{figs['val_loss']:.4f}",
        f"<= {TARGET_VAL_LOSS} at {STEPS} steps",
        loss_ok,
    )
    print_summary(
        BENCHMARK,
        "logit gap vs HF Auto",
        f"{figs['logit_gap']:.3g}",
        f"<= {TARGET_LOGIT_GAP}",
        logits_ok,
    )


def main() -> None:
    opts = parse_options()
    torch.set_num_threads(opts["threads"])
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
