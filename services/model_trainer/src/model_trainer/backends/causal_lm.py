"""What every causal LM shares, written once: training through the loop, evaluation, scoring
and one sampling loop over the models' decoders.

`CausalLMBackend` is the backend interface. A model family subclasses it and supplies the three
things that differ (`build`, `save`, `load`); everything else is the code below.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar, TypeVar

import torch
from torch import Tensor, nn

from model_trainer.contracts.model import (
    Decoder,
    DetailLevel,
    EvalConfig,
    EvalOutcome,
    GenerateConfig,
    GenerateOutcome,
    LMModelProto,
    ModelArtifact,
    ModelFamily,
    PreparedLMModel,
    ScoreConfig,
    ScoreOutcome,
    StopCheck,
    TokenScore,
    TrainingCallbacks,
    TrainOutcome,
)
from model_trainer.contracts.tokenizer import Encoder, TokenizerHandle
from model_trainer.contracts.train_config import ModelTrainConfig, ParentRef
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.checkpoints import CHECKPOINTS_DIR, find_checkpoint
from model_trainer.storage.corpora import Corpus, confine, read_corpus
from model_trainer.storage.run_metrics import METRICS_FILE
from model_trainer.storage.run_store import (
    fetch_checkpoint,
    fetch_checkpoints,
    fetch_run,
    publish_checkpoint,
    publish_run,
)
from model_trainer.storage.runs import (
    RunManifest,
    git_commit,
    library_versions,
    run_artifacts,
    utc_now,
    write_manifest,
)
from model_trainer.storage.runs import (
    run_dir as stored_run_dir,
)
from model_trainer.training import distributed
from model_trainer.training.base_trainer import BaseTrainer, EvalMetrics, LoopConfig
from model_trainer.training.checkpoint import load_weights, resume_latest
from model_trainer.training.data import TokenWindows, split_tokens
from model_trainer.training.device import (
    compile_model,
    configure_fast_math,
    resolve_device,
    uses_bf16,
)
from model_trainer.training.evaluation import (
    cross_entropy_loss,
    evaluate_loss,
    stop_if_asked,
)
from model_trainer.training.optim import make_optimizer

HEARTBEAT_INTERVAL_S = 5.0
DEFAULT_TOP_K = 5

StateT = TypeVar("StateT")


class CausalLMBackend(ABC):
    """One model family: what differs is how a model is built, saved and loaded."""

    family: ClassVar[ModelFamily]

    @abstractmethod
    def build(
        self, cfg: ModelTrainConfig, settings: Settings, tokenizer: TokenizerHandle
    ) -> LMModelProto:
        """A model to train for this config (fresh, or a checkpoint to fine-tune), seeded."""

    @abstractmethod
    def save(self, prepared: PreparedLMModel, out_dir: str) -> ModelArtifact:
        """Write the weights, config and tokenizer a run directory holds."""

    @abstractmethod
    def load(self, artifact_path: str, settings: Settings) -> PreparedLMModel:
        """A saved model and its tokenizer, on the best device here."""

    def prepare(
        self, cfg: ModelTrainConfig, settings: Settings, *, tokenizer: TokenizerHandle
    ) -> PreparedLMModel:
        """A model for the config, built under its seed so the same config gives the same
        weights, refused when its windows would not fit the model's context."""
        torch.manual_seed(cfg["seed"])
        model = self.build(cfg, settings, tokenizer)
        check_fits_context(cfg["max_seq_len"], model)
        parent = cfg["parent"]
        if parent is not None:
            self._start_from(model, parent, settings)
        return prepared_model(self.family, model, tokenizer)

    def load_at(
        self, artifact_path: str, settings: Settings, *, step: int | None
    ) -> PreparedLMModel:
        """A saved run's model, with the weights of its checkpoint at `step` when given."""
        prepared = self.load(artifact_path, settings)
        if step is not None:
            run = Path(artifact_path)
            fetch_checkpoint(settings, run.name, step)
            load_weights(
                as_module(prepared["model"]), find_checkpoint(run / CHECKPOINTS_DIR, step, run.name)
            )
        return prepared

    def _start_from(self, model: LMModelProto, parent: ParentRef, settings: Settings) -> None:
        """A continued run starts from its parent's weights (verified before they are read)."""
        if parent["step"] is not None:
            fetch_checkpoint(settings, parent["run_id"], parent["step"])
            checkpoints = stored_run_dir(settings, parent["run_id"]) / CHECKPOINTS_DIR
            load_weights(
                as_module(model), find_checkpoint(checkpoints, parent["step"], parent["run_id"])
            )
            return
        source = self.load(str(fetch_run(settings, parent["run_id"])), settings)["model"]
        as_module(model).load_state_dict(as_module(source).state_dict())

    def train(
        self,
        cfg: ModelTrainConfig,
        settings: Settings,
        *,
        corpus: Corpus,
        run_dir: str,
        prepared: PreparedLMModel,
        callbacks: TrainingCallbacks,
    ) -> TrainOutcome:
        """Train on the corpus (read once by the caller), resuming from the run's latest
        checkpoint that verifies, then save the run and its manifest (with every file's
        sha256). One of several processes (training/distributed.py) trains on its share of
        each batch; rank 0 alone writes checkpoints, metrics and the run."""
        started_at = utc_now()
        module = as_module(prepared["model"])
        device = distributed.rank_device(resolve_device(cfg["device"]))
        main = distributed.rank() == 0
        configure_fast_math(device)
        compile_model(module, device, enabled=cfg.get("compile", False))
        module.to(device)
        directory = Path(run_dir)
        directory.mkdir(parents=True, exist_ok=True)
        tokens = encode_text(prepared["tokenizer"], corpus["text"])
        train_windows, val_windows = _windows(cfg, tokens, distributed.rank())
        trainer = BaseTrainer(
            {
                "model": module,
                "optimizer": make_optimizer(module, cfg, device),
                "loss_fn": cross_entropy_loss,
                "train_windows": train_windows,
                "val_windows": val_windows,
                "device": device,
                "checkpoint_dir": directory / CHECKPOINTS_DIR if main else None,
                "metrics_file": directory / METRICS_FILE if main else None,
                "checkpointed": lambda path: publish_checkpoint(settings, path),
            },
            loop_config(cfg, bf16=uses_bf16(cfg["precision"], device)),
            callbacks,
        )
        # A training retried on another worker resumes from what this one's store holds.
        fetch_checkpoints(settings, directory / CHECKPOINTS_DIR)
        resume_latest(directory / CHECKPOINTS_DIR, trainer.resume)
        history = list(trainer.train())
        outcome = _outcome(history[-1], trainer, run_dir)
        if not main:
            return outcome
        self.save(prepared, run_dir)
        manifest: RunManifest = {
            "run_id": directory.name,
            "model_family": prepared["model_family"],
            "model_size": prepared["model_size"],
            "config": cfg,
            "metrics": outcome,
            "corpus_sha256": corpus["sha256"],
            "corpus_bytes": corpus["bytes"],
            "tokenizer_id": prepared["tokenizer_id"],
            "num_params": num_params(prepared["model"]),
            "device": str(device),
            "library_versions": library_versions(),
            "git_commit": git_commit(Path(__file__).parent),
            "created_at": started_at,
            "completed_at": utc_now(),
            "artifacts": run_artifacts(directory),
        }
        write_manifest(directory, manifest)
        publish_run(settings, directory)
        return outcome

    def evaluate(
        self,
        *,
        prepared: PreparedLMModel,
        cfg: EvalConfig,
        settings: Settings,
        should_stop: StopCheck | None = None,
    ) -> EvalOutcome:
        """Loss on the corpus's validation tail (the split training held out) or on all of it;
        `should_stop` is asked between batches, so a cancelled job stops (TRAINING_CANCELLED)."""
        model = prepared["model"]
        check_fits_context(cfg["max_seq_len"], model)
        module = as_module(model)
        tokens = encode_text(
            prepared["tokenizer"], read_corpus(cfg["corpus_path"], settings)["text"]
        )
        if cfg["split"] == "validation":
            tokens = split_tokens(tokens, cfg["val_fraction"])[1]
        windows = TokenWindows(
            tokens, seq_len=cfg["max_seq_len"], batch_size=cfg["batch_size"], seed=0, shuffle=False
        )
        device = model_device(model)
        loss = evaluate_loss(
            module,
            windows,
            loss_fn=cross_entropy_loss,
            device=device,
            bf16=uses_bf16("auto", device),
            max_batches=cfg["max_batches"],
            should_stop=should_stop,
        )
        batches = windows.batches_per_epoch
        if cfg["max_batches"] is not None:
            batches = min(batches, cfg["max_batches"])
        return {
            "loss": loss,
            "perplexity": perplexity(loss),
            "tokens": batches * windows.tokens_per_batch,
        }

    def score(
        self,
        *,
        prepared: PreparedLMModel,
        cfg: ScoreConfig,
        settings: Settings,
        should_stop: StopCheck | None = None,
    ) -> ScoreOutcome:
        """Every token is predicted, the first from the eos token that stands for 'start'.

        A text longer than the model's context is scored in sliding windows: each token once,
        and every token after the first window sees at least half a context before it.
        `should_stop` is asked before each window, so a cancelled job stops (TRAINING_CANCELLED).
        """
        model = prepared["model"]
        text = resolve_text(cfg["text"], cfg["path"], settings)
        if not text:
            raise ModelTrainerError(
                "INVALID_CONFIG", "text to score is empty", details={"field": "text"}
            )
        tokenizer = prepared["tokenizer"]
        ids, spans = tokenizer.encode_with_offsets(text)
        tokens = torch.tensor([prepared["eos_id"], *ids], device=model_device(model))
        parts: list[ScoreOutcome] = []
        model.eval()
        with torch.inference_mode():
            for start, low, high in score_windows(len(ids), model.context or len(ids)):
                stop_if_asked(should_stop, f"scoring cancelled after {low} of {len(ids)} tokens")
                logits = model(tokens[None, start:high])[0, low - start :]
                parts.append(
                    score_outcome(
                        torch.log_softmax(logits.float(), dim=-1),
                        tokens[low + 1 : high + 1],
                        token_texts=[text[a:b] for a, b in spans[low:high]],
                        tokenizer=tokenizer,
                        detail_level=cfg["detail_level"],
                        top_k=cfg["top_k"],
                    )
                )
        return _merge_scores(parts, spans)

    def generate(
        self,
        *,
        prepared: PreparedLMModel,
        cfg: GenerateConfig,
        settings: Settings,
        should_stop: StopCheck | None = None,
    ) -> GenerateOutcome:
        """Sample continuations, all sequences in one batch, one token per decoder call.

        A model with a context keeps only the prompt's last tokens, and when a sequence fills
        the context, decoding starts afresh from its last half. `should_stop` is asked before
        each token, so a cancelled job stops within a step (TRAINING_CANCELLED).
        """
        model = prepared["model"]
        eos, pad = prepared["eos_id"], prepared["pad_id"]
        n, steps, context = cfg["num_return_sequences"], cfg["max_new_tokens"], model.context
        prompt_text = resolve_text(cfg["prompt_text"], cfg["prompt_path"], settings)
        device = model_device(model)
        prompt = torch.tensor([eos, *prepared["tokenizer"].encode(prompt_text)], device=device)
        if context is not None:
            prompt = prompt[-prompt_budget(context, steps) :]
        prompt = prompt.expand(n, -1)
        generator = make_generator(cfg["seed"], device)
        out = torch.full((n, steps), pad, device=device)
        finished = torch.zeros(n, dtype=torch.bool, device=device)
        model.eval()
        with torch.inference_mode():
            decode = model.decoder()
            last = decode(prompt)[:, -1, :]
            length = prompt.size(1)
            for t in range(steps):
                stop_if_asked(should_stop, f"generation cancelled after {t} of {steps} tokens")
                token = sample_next(
                    last,
                    temperature=cfg["temperature"],
                    top_k=cfg["top_k"],
                    top_p=cfg["top_p"],
                    generator=generator,
                )
                if cfg["stop_on_eos"]:
                    out[:, t] = torch.where(finished, pad, token)
                    finished |= token == eos
                    if bool(finished.all()):
                        break
                else:
                    out[:, t] = token
                if length == context:  # full: carry on from the last half of each sequence
                    length = context // 2
                    decode = model.decoder()
                    last = decode(torch.cat([prompt, out[:, : t + 1]], 1)[:, -length:])[:, -1, :]
                else:
                    last = decode(token[:, None])[:, -1, :]
                    length += 1
        stop_at = eos if cfg["stop_on_eos"] else None
        return generation_outcome(out.tolist(), stop_at, prompt_text, prepared["tokenizer"])


# --- models ---------------------------------------------------------------------------------


def decoding(step: Callable[[Tensor, StateT | None], tuple[Tensor, StateT]]) -> Decoder:
    """A decoder over a model's `step(input_ids, state) -> (logits, state)`."""
    state: StateT | None = None

    def feed(input_ids: Tensor) -> Tensor:
        nonlocal state
        logits, state = step(input_ids, state)
        return logits

    return feed


def prepared_model(
    family: ModelFamily, model: LMModelProto, tokenizer: TokenizerHandle
) -> PreparedLMModel:
    """A model beside its tokenizer, refused when their vocabularies differ."""
    if model.vocab_size != tokenizer.vocab_size:
        raise ModelTrainerError(
            "MODEL_INCOMPATIBLE",
            f"tokenizer {tokenizer.tokenizer_id} has {tokenizer.vocab_size} tokens, "
            f"the model expects {model.vocab_size}",
            details={"tokenizer_id": tokenizer.tokenizer_id},
        )
    return {
        "model": model,
        "model_family": family,
        "model_size": model.model_size,
        "tokenizer": tokenizer,
        "tokenizer_id": tokenizer.tokenizer_id,
        "eos_id": tokenizer.eos_id,
        "pad_id": tokenizer.pad_id,
        "max_seq_len": model.max_seq_len,
    }


def check_fits_context(max_seq_len: int, model: LMModelProto) -> None:
    context = model.context
    if context is not None and max_seq_len > context:
        raise ModelTrainerError(
            "INVALID_CONFIG",
            f"max_seq_len must be <= {context} (the context of this {model.model_size} model), "
            f"got {max_seq_len}",
            details={"field": "max_seq_len"},
        )


def as_module(model: LMModelProto) -> nn.Module:
    """The torch module behind a prepared model (every backend's model is one)."""
    if not isinstance(model, nn.Module):
        raise ModelTrainerError(
            "MODEL_INCOMPATIBLE", f"expected a torch module, got {type(model).__name__}"
        )
    return model


def model_device(model: LMModelProto) -> torch.device:
    return next(model.parameters()).device


def num_params(model: LMModelProto) -> int:
    return sum(p.numel() for p in model.parameters())


# --- training -------------------------------------------------------------------------------


def perplexity(loss: float) -> float:
    return math.exp(min(loss, 50.0))


def encode_text(tokenizer: Encoder, text: str) -> Tensor:
    return torch.tensor(tokenizer.encode(text), dtype=torch.long)


def _windows(
    cfg: ModelTrainConfig, tokens: Tensor, rank: int
) -> tuple[TokenWindows, TokenWindows | None]:
    """Shuffled training windows (this rank's share of each batch) and, unless no split is
    asked for, validation windows (whole: rank 0 alone validates)."""
    train, val = split_tokens(tokens, cfg["val_fraction"])

    def windows(part: Tensor, *, shuffle: bool, shard: tuple[int, int]) -> TokenWindows:
        return TokenWindows(
            part,
            seq_len=cfg["max_seq_len"],
            batch_size=cfg["batch_size"],
            seed=cfg["seed"],
            shuffle=shuffle,
            shard=shard,
        )

    validation = windows(val, shuffle=False, shard=(0, 1)) if cfg["val_fraction"] > 0.0 else None
    return windows(train, shuffle=True, shard=(rank, distributed.world_size())), validation


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
        "keep_best_checkpoints": cfg["keep_best_checkpoints"],
        "early_stopping_patience": cfg["early_stopping_patience"],
        "early_stopping_min_delta": cfg["early_stopping_min_delta"],
        "health": {
            "grad_norm_max": cfg["grad_norm_alert_max"],
            "grad_norm_min": cfg["grad_norm_alert_min"],
            "val_loss_spike_ratio": cfg["val_loss_spike_ratio"],
        },
        "heartbeat_interval_s": HEARTBEAT_INTERVAL_S,
        "time_budget_s": cfg["time_budget_s"],
        "bf16": bf16,
    }


def _outcome(final: EvalMetrics, trainer: BaseTrainer, run_dir: str) -> TrainOutcome:
    val = final["val_loss"]
    return {
        "loss": final["train_loss"],
        "perplexity": perplexity(final["train_loss"]),
        "val_loss": val,
        "val_perplexity": None if val is None else perplexity(val),
        "steps": final["step"],
        "epochs_completed": final["epoch"],
        "tokens_seen": final["tokens_seen"],
        "tokens_per_second": final["tokens_per_second"],
        "elapsed_s": final["elapsed_s"],
        "resumed_from_step": trainer.resumed_from_step,
        "out_dir": run_dir,
        "stop_reason": trainer.stop_reason,
        "best_val_loss": trainer.best_val_loss,
        "best_step": trainer.best_step,
    }


# --- inputs ---------------------------------------------------------------------------------


def resolve_text(text: str | None, path: str | None, settings: Settings) -> str:
    """The inline text, or the file's under DATA_ROOT; validators guarantee exactly one."""
    if text is not None:
        return text
    resolved = confine(str(path), [settings["data_root"]])
    if not resolved.is_file():
        raise ModelTrainerError(
            "CORPUS_NOT_FOUND", f"text file {path} does not exist", details={"path": str(path)}
        )
    return resolved.read_text(encoding="utf-8", errors="replace")


# --- scoring --------------------------------------------------------------------------------


def score_windows(count: int, context: int) -> Iterator[tuple[int, int, int]]:
    """(start, low, high): inputs `start:high` score targets `low:high` of `count`."""
    high = min(count, context)
    yield 0, 0, high
    stride = max(1, context // 2)
    while high < count:
        low, high = high, min(count, high + stride)
        yield high - context, low, high


def score_outcome(
    log_probs: Tensor,
    targets: Tensor,
    *,
    token_texts: list[str],
    tokenizer: TokenizerHandle,
    detail_level: DetailLevel,
    top_k: int | None,
) -> ScoreOutcome:
    """`log_probs` (n, vocab) predicts `targets` (n,); `token_texts[i]` is target i's text."""
    target_lp = log_probs.gather(1, targets[:, None]).squeeze(1)
    loss = float(-target_lp.mean().item())
    outcome: ScoreOutcome = {
        "loss": loss,
        "perplexity": perplexity(loss),
        "num_tokens": targets.numel(),
        "per_token": None,
    }
    if detail_level == "per_char":
        outcome["per_token"] = _per_token(log_probs, target_lp, token_texts, tokenizer, top_k)
    return outcome


def _per_token(
    log_probs: Tensor,
    target_lp: Tensor,
    token_texts: list[str],
    tokenizer: TokenizerHandle,
    top_k: int | None,
) -> list[TokenScore]:
    k = min(DEFAULT_TOP_K if top_k is None else top_k, log_probs.size(-1))
    top = torch.topk(log_probs, k, dim=-1)
    top_probs: list[list[float]] = top.values.exp().tolist()
    top_ids: list[list[int]] = top.indices.tolist()
    target_values: list[float] = target_lp.tolist()
    return [
        {
            "token": text,
            "prob": math.exp(lp),
            "surprisal": -lp / math.log(2.0),
            "top_k": [
                {"token": tokenizer.id_to_token(i), "prob": p}
                for i, p in zip(ids, probs, strict=True)
            ],
        }
        for text, lp, ids, probs in zip(token_texts, target_values, top_ids, top_probs, strict=True)
    ]


def _merge_scores(parts: list[ScoreOutcome], spans: list[tuple[int, int]]) -> ScoreOutcome:
    """One outcome from the windows' (each window's loss is a mean over its tokens), with
    every token's character offsets."""
    count = sum(part["num_tokens"] for part in parts)
    loss = (
        parts[0]["loss"]
        if len(parts) == 1
        else sum(part["loss"] * part["num_tokens"] for part in parts) / count
    )
    per_token: list[TokenScore] | None = None
    if parts[0]["per_token"] is not None:
        per_token = [entry for part in parts for entry in part["per_token"] or []]
        for entry, (start, end) in zip(per_token, spans, strict=True):
            entry["start"], entry["end"] = start, end
    return {
        "loss": loss,
        "perplexity": perplexity(loss),
        "num_tokens": count,
        "per_token": per_token,
    }


# --- sampling -------------------------------------------------------------------------------


def prompt_budget(context: int, max_new_tokens: int) -> int:
    """How many prompt tokens to keep: all the new tokens fit beside them when they can, and
    never fewer than half a context, so a long continuation still sees its prompt."""
    return max(context - max_new_tokens, context // 2, 1)


def sample_next(
    logits: Tensor,
    *,
    temperature: float,
    top_k: int,
    top_p: float,
    generator: torch.Generator,
) -> Tensor:
    """One token id per row of `logits` (batch, vocab); top_k=0 and top_p=1 switch a filter off."""
    scores = logits.float()
    if temperature != 1.0:
        scores = scores / temperature
    if 0 < top_k < scores.size(-1):
        kth = torch.topk(scores, top_k, dim=-1).values[:, -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if top_p < 1.0:
        sorted_scores, order = torch.sort(scores, dim=-1, descending=True)
        probs = torch.softmax(sorted_scores, dim=-1)
        # Drop a token once the tokens ranked above it already cover top_p; the first stays.
        drop = torch.cumsum(probs, dim=-1) - probs >= top_p
        sorted_scores = sorted_scores.masked_fill(drop, float("-inf"))
        scores = torch.full_like(scores, float("-inf")).scatter(-1, order, sorted_scores)
    # An inverse-CDF draw: one uniform per row against the running total. For one draw per row
    # it is several times cheaper than `torch.multinomial`, a fixed cost paid on every token.
    # `right=True` skips the CDF's flat steps, so a filtered-out token is never drawn.
    cdf = torch.softmax(scores, dim=-1, dtype=torch.float64).cumsum_(-1)
    uniform = torch.rand(
        cdf.size(0), 1, generator=generator, dtype=torch.float64, device=cdf.device
    )
    drawn = torch.searchsorted(cdf, uniform * cdf[:, -1:], right=True)
    return drawn.squeeze_(1).clamp_(max=cdf.size(-1) - 1)


def make_generator(seed: int | None, device: torch.device) -> torch.Generator:
    """Seeded when asked (same seed, same text), otherwise from fresh entropy."""
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator


def generation_outcome(
    rows: list[list[int]], stop_at: int | None, prompt_text: str, tokenizer: Encoder
) -> GenerateOutcome:
    """Prompt plus continuation, cut before the eos that ended a sequence."""
    outputs: list[str] = []
    counts: list[int] = []
    on_eos: list[bool] = []
    for row in rows:
        stop = row.index(stop_at) if stop_at in row else len(row)
        outputs.append(prompt_text + tokenizer.decode(row[:stop]))
        counts.append(stop)
        on_eos.append(stop < len(row))
    return {"outputs": outputs, "new_tokens": counts, "finished_on_eos": on_eos}
