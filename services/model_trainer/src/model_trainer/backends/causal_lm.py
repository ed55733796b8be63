"""Train and evaluate any causal LM on a corpus through BaseTrainer; backends wrap these."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from model_trainer.contracts.model import (
    EvalConfig,
    EvalOutcome,
    ModelArtifact,
    ModelTrainConfig,
    PreparedLMModel,
    TrainingCallbacks,
    TrainOutcome,
)
from model_trainer.settings import Settings
from model_trainer.storage.corpora import read_corpus
from model_trainer.storage.runs import (
    RunManifest,
    git_commit,
    library_versions,
    utc_now,
    write_manifest,
)
from model_trainer.training.base_trainer import BaseTrainer, EvalMetrics, LoopConfig
from model_trainer.training.checkpoint import latest_checkpoint
from model_trainer.training.data import TokenWindows, split_tokens
from model_trainer.training.device import configure_fast_math, resolve_device, uses_bf16
from model_trainer.training.evaluation import cross_entropy_loss, evaluate_loss
from model_trainer.training.optim import make_optimizer

HEARTBEAT_INTERVAL_S = 5.0


def _perplexity(loss: float) -> float:
    return math.exp(min(loss, 50.0))


def encode_corpus(prepared: PreparedLMModel, text: str) -> Tensor:
    return torch.tensor(prepared["tok_for_dataset"].encode(text), dtype=torch.long)


def loop_config(cfg: ModelTrainConfig, *, bf16: bool) -> LoopConfig:
    return {
        "num_epochs": cfg["num_epochs"],
        "max_steps": cfg["max_steps"],
        "grad_accum_steps": cfg["grad_accum_steps"],
        "grad_clip": cfg["grad_clip"],
        "lr_schedule": cfg["lr_schedule"],
        "warmup_steps": cfg["warmup_steps"],
        "min_lr_ratio": cfg["min_lr_ratio"],
        "log_every_steps": cfg["log_every_steps"],
        "eval_every_steps": cfg["eval_every_steps"],
        "eval_max_batches": cfg["eval_max_batches"],
        "checkpoint_every_steps": cfg["checkpoint_every_steps"],
        "keep_checkpoints": cfg["keep_checkpoints"],
        "heartbeat_interval_s": HEARTBEAT_INTERVAL_S,
        "time_budget_s": cfg["time_budget_s"],
        "bf16": bf16,
    }


def train_causal_lm(
    prepared: PreparedLMModel,
    *,
    module: nn.Module,
    cfg: ModelTrainConfig,
    settings: Settings,
    run_dir: str,
    callbacks: TrainingCallbacks,
    save: Callable[[PreparedLMModel, str], ModelArtifact],
) -> TrainOutcome:
    """Train on the corpus, resuming from the run's latest checkpoint when one exists."""
    started_at = utc_now()
    corpus = read_corpus(cfg["corpus_path"], settings)
    device = resolve_device(cfg["device"])
    configure_fast_math(device)
    train_tokens, val_tokens = split_tokens(
        encode_corpus(prepared, corpus["text"]), cfg["val_fraction"]
    )
    windows = {"seq_len": cfg["max_seq_len"], "batch_size": cfg["batch_size"], "seed": cfg["seed"]}
    module.to(device)
    directory = Path(run_dir)
    trainer = BaseTrainer(
        {
            "model": module,
            "optimizer": make_optimizer(
                module,
                learning_rate=cfg["learning_rate"],
                weight_decay=cfg["weight_decay"],
                device=device,
            ),
            "loss_fn": cross_entropy_loss,
            "train_windows": TokenWindows(train_tokens, shuffle=True, **windows),
            "val_windows": (
                TokenWindows(val_tokens, shuffle=False, **windows)
                if cfg["val_fraction"] > 0.0
                else None
            ),
            "device": device,
            "checkpoint_dir": directory / "checkpoints",
        },
        loop_config(cfg, bf16=uses_bf16(cfg["precision"], device)),
        callbacks,
    )
    checkpoint = latest_checkpoint(directory / "checkpoints")
    if checkpoint is not None:
        trainer.resume(checkpoint)
    history = list(trainer.train())
    outcome = _outcome(history[-1], trainer, run_dir)
    save(prepared, run_dir)
    manifest: RunManifest = {
        "run_id": directory.name,
        "model_family": prepared["model_family"],
        "model_size": prepared["model_size"],
        "config": cfg,
        "metrics": outcome,
        "corpus_sha256": corpus["sha256"],
        "corpus_bytes": corpus["bytes"],
        "tokenizer_id": prepared["tokenizer_id"],
        "num_params": sum(p.numel() for p in module.parameters()),
        "device": str(device),
        "library_versions": library_versions(),
        "git_commit": git_commit(Path(__file__).parent),
        "created_at": started_at,
        "completed_at": utc_now(),
    }
    write_manifest(directory, manifest)
    return outcome


def _outcome(final: EvalMetrics, trainer: BaseTrainer, run_dir: str) -> TrainOutcome:
    val = final["val_loss"]
    return {
        "loss": final["train_loss"],
        "perplexity": _perplexity(final["train_loss"]),
        "val_loss": val,
        "val_perplexity": None if val is None else _perplexity(val),
        "steps": final["step"],
        "epochs_completed": final["epoch"],
        "tokens_seen": final["tokens_seen"],
        "tokens_per_second": final["tokens_per_second"],
        "elapsed_s": final["elapsed_s"],
        "resumed_from_step": trainer.resumed_from_step,
        "out_dir": run_dir,
    }


def evaluate_causal_lm(
    prepared: PreparedLMModel, module: nn.Module, cfg: EvalConfig, settings: Settings
) -> EvalOutcome:
    """Loss on the corpus's validation tail (the split training held out) or on all of it."""
    corpus = read_corpus(cfg["corpus_path"], settings)
    tokens = encode_corpus(prepared, corpus["text"])
    if cfg["split"] == "validation":
        tokens = split_tokens(tokens, cfg["val_fraction"])[1]
    windows = TokenWindows(
        tokens, seq_len=cfg["max_seq_len"], batch_size=cfg["batch_size"], seed=0, shuffle=False
    )
    device = next(module.parameters()).device
    loss = evaluate_loss(
        module,
        windows,
        loss_fn=cross_entropy_loss,
        device=device,
        bf16=uses_bf16("auto", device),
        max_batches=cfg["max_batches"],
    )
    batches = windows.batches_per_epoch
    if cfg["max_batches"] is not None:
        batches = min(batches, cfg["max_batches"])
    return {
        "loss": loss,
        "perplexity": _perplexity(loss),
        "tokens": batches * windows.tokens_per_batch,
    }
