"""The one training loop every backend shares (seed 004 §3).

Backends supply the model, the loss and the token windows; the loop owns device placement,
mixed precision, gradient accumulation and clipping, the learning-rate schedule, validation,
checkpoints and their retention, early stopping, gradient health, the metrics history,
non-finite loss detection and the callbacks. It reads losses and gradient norms from the device
only at log intervals, in one sync: a per-step `.item()` would make the CPU wait for the GPU
every step.

Several processes (training/distributed.py) run this same loop, the model wrapped in
DistributedDataParallel, each on its share of every batch. At each report one collective
averages their losses and carries rank 0's cancel answer; after a validation (rank 0's alone)
one broadcast carries its stop decisions; so every rank stops at the same step. Rank 0 alone
gets callbacks that reach Redis and a checkpoint directory (the caller sees to that).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NotRequired, TypedDict

import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from model_trainer.contracts.model import (
    LRSchedule,
    StepMetrics,
    StopReason,
    TrainingAlert,
    TrainingCallbacks,
)
from model_trainer.errors import ModelTrainerError
from model_trainer.storage.checkpoints import CheckpointMetrics
from model_trainer.storage.run_metrics import MetricPoint, append_point
from model_trainer.storage.runs import utc_now
from model_trainer.training import distributed
from model_trainer.training.checkpoint import CheckpointState, load_checkpoint, save_checkpoint
from model_trainer.training.data import TokenWindows
from model_trainer.training.device import autocast
from model_trainer.training.early_stopping import EarlyStopping
from model_trainer.training.evaluation import evaluate_loss
from model_trainer.training.health import HealthMonitor, HealthThresholds
from model_trainer.training.optim import WarmupCosine


class LoopConfig(TypedDict):
    num_epochs: int
    max_steps: int | None
    grad_accum_steps: int
    grad_clip: float | None
    lr_schedule: LRSchedule
    warmup_steps: int
    min_lr_ratio: float
    log_every_steps: int
    eval_every_steps: int | None
    eval_max_batches: int
    checkpoint_every_steps: int | None
    keep_checkpoints: int
    keep_best_checkpoints: int
    early_stopping_patience: int | None
    early_stopping_min_delta: float
    health: HealthThresholds
    heartbeat_interval_s: float
    time_budget_s: float | None
    bf16: bool


class TrainingParts(TypedDict):
    model: nn.Module
    optimizer: Optimizer
    loss_fn: Callable[[Tensor, Tensor], Tensor]
    train_windows: TokenWindows
    val_windows: TokenWindows | None
    device: torch.device
    checkpoint_dir: Path | None
    # The run's metrics history (storage/run_metrics.py), appended at each report.
    metrics_file: Path | None
    # Called with each checkpoint once saved (publishes it to the artifact store).
    checkpointed: NotRequired[Callable[[Path], None]]


class EvalMetrics(TypedDict):
    """Yielded at each epoch end and each `eval_every_steps`."""

    epoch: int
    step: int
    total_steps: int
    train_loss: float
    val_loss: float | None
    tokens_seen: int
    elapsed_s: float
    tokens_per_second: float


class BaseTrainer:
    """Runs the loop over prepared parts; `train()` yields metrics, the caller decides what next."""

    def __init__(
        self, parts: TrainingParts, config: LoopConfig, callbacks: TrainingCallbacks
    ) -> None:
        self._parts = parts
        self._cfg = config
        self._callbacks = callbacks
        self._model = parts["model"]
        # Forward and backward go through the wrapper; checkpoints hold the model's own weights.
        self._net = distributed.wrap(self._model, parts["device"])
        self._ranks = distributed.world_size()
        self._main = distributed.rank() == 0
        self._cancel_seen = False
        self._params = [p for p in self._model.parameters() if p.requires_grad]
        steps_per_epoch = parts["train_windows"].batches_per_epoch // config["grad_accum_steps"]
        if steps_per_epoch < 1:
            raise ModelTrainerError(
                "INVALID_CONFIG",
                f"grad_accum_steps={config['grad_accum_steps']} exceeds the "
                f"{parts['train_windows'].batches_per_epoch} batches in one epoch",
                details={"field": "grad_accum_steps"},
            )
        self._steps_per_epoch = steps_per_epoch
        # max_steps, when given, is the whole run (validators keep num_epochs at 1 then).
        max_steps = config["max_steps"]
        total = steps_per_epoch * config["num_epochs"] if max_steps is None else max_steps
        self.total_steps = total
        self._schedule = WarmupCosine(
            kind=config["lr_schedule"],
            warmup=config["warmup_steps"],
            total=total,
            min_ratio=config["min_lr_ratio"],
        )
        self._scheduler = LambdaLR(parts["optimizer"], self._schedule)
        self._pos: CheckpointState = {
            "step": 0,
            "epoch": 0,
            "batch_index": 0,
            "tokens_seen": 0,
            "elapsed_s": 0.0,
        }
        self.resumed_from_step: int | None = None
        self._session_start = 0.0
        self._session_tokens = 0
        self._elapsed_before = 0.0
        self._eval_seconds = 0.0
        self._health = HealthMonitor(config["health"])
        self._early = EarlyStopping(
            config["early_stopping_patience"], config["early_stopping_min_delta"]
        )
        self._last_point: MetricPoint | None = None
        self._last_eval: EvalMetrics | None = None
        self.stop_reason: StopReason = "completed"

    @property
    def best_val_loss(self) -> float | None:
        return self._early.best_loss

    @property
    def best_step(self) -> int | None:
        return self._early.best_step

    def resume(self, checkpoint: Path) -> None:
        """Continue from a checkpoint: same weights, optimizer, schedule, RNG and data position."""
        self._pos = load_checkpoint(
            checkpoint,
            model=self._model,
            optimizer=self._parts["optimizer"],
            scheduler=self._scheduler,
        )
        self.resumed_from_step = self._pos["step"]

    def train(self) -> Iterator[EvalMetrics]:
        cfg, pos = self._cfg, self._pos
        self._model.train()
        window: list[Tensor] = []
        eval_loss_sum, eval_steps = 0.0, 0
        self._session_start = time.time()
        self._session_tokens = 0
        self._eval_seconds = 0.0
        self._elapsed_before = pos["elapsed_s"]
        next_beat = self._beat(self._session_start)
        finished = pos["step"] >= self.total_steps
        while not finished:
            if self._cancel_asked():
                self._stop_cancelled()
            now = time.time()
            if now >= next_beat:
                next_beat = self._beat(now)
            window.append(self._step(pos["epoch"], pos["batch_index"]))
            self._advance()
            step = pos["step"]
            epoch_done = pos["batch_index"] == 0
            finished = step >= self.total_steps or self._out_of_time()
            if finished:
                if step < self.total_steps:
                    self.stop_reason = "time_budget"
                self._schedule.total = step  # a time budget may end the run before the plan
            every = cfg["checkpoint_every_steps"]
            checkpoint_due = every is not None and step % every == 0 and not finished
            # A checkpoint is measured where it is taken, so retention can rank it.
            eval_due = (
                cfg["eval_every_steps"] is not None and step % cfg["eval_every_steps"] == 0
            ) or (checkpoint_due and self._parts["val_windows"] is not None)
            log_due = step % cfg["log_every_steps"] == 0
            if log_due or epoch_done or finished or eval_due or checkpoint_due:
                if not finished:
                    self._follow_time_budget()
                mean = self._flush(window)
                eval_loss_sum += mean * len(window)
                eval_steps += len(window)
                window = []
            if epoch_done or finished or eval_due:
                metrics = self._metrics(eval_loss_sum / eval_steps)
                yield metrics
                eval_loss_sum, eval_steps = 0.0, 0
                # Reported even at the end: other trials' pruning compares against it.
                pruned, early = distributed.from_rank0(
                    [self._pruned(metrics), self._stops_early(metrics)], self._parts["device"]
                )
                if (pruned or early) and not finished:
                    finished = True
                    self.stop_reason = "pruned" if pruned else "early_stopping"
                    self._schedule.total = step
            if checkpoint_due:
                self._checkpoint()

    def _cancel_asked(self) -> bool:
        """One process asks its callback (a cheap cached flag) every step; several act on
        rank 0's answer as of the last report, so all stop at the same step."""
        if self._ranks == 1:
            return self._callbacks["cancelled"]()
        return self._cancel_seen

    def _pruned(self, metrics: EvalMetrics) -> bool:
        prune, val_loss = self._callbacks["prune"], metrics["val_loss"]
        return prune is not None and val_loss is not None and prune(metrics["step"], val_loss)

    def _stops_early(self, metrics: EvalMetrics) -> bool:
        val_loss = metrics["val_loss"]
        return val_loss is not None and self._early.update(metrics["step"], val_loss)

    def _step(self, epoch: int, index: int) -> Tensor:
        """One optimizer step over `grad_accum_steps` micro-batches; returns the detached loss
        and the gradients' global norm before clipping, still on the device.

        Without accumulation (the default) the loss is back-propagated and kept as it is: at a
        small model's ~20 ms CPU step, dividing by 1 and summing into a zeroed tensor were
        measurable next to a hand-written loop."""
        parts, accum = self._parts, self._cfg["grad_accum_steps"]
        device = parts["device"]
        losses: list[Tensor] = []
        for micro in range(accum):
            inputs, targets = parts["train_windows"].batch(epoch, index + micro)
            inputs = inputs.to(device, non_blocking=True)
            targets = targets.to(device, non_blocking=True)
            with distributed.gradient_sync(self._net, sync=micro == accum - 1):
                with autocast(device, bf16=self._cfg["bf16"]):
                    logits: Tensor = self._net(inputs)
                    loss = parts["loss_fn"](logits, targets)
                torch.autograd.backward(loss if accum == 1 else loss / accum)
            losses.append(loss.detach())
        step_loss = losses[0] if accum == 1 else torch.stack(losses).float().mean()
        if self._cfg["grad_clip"] is not None:
            norm = nn.utils.clip_grad_norm_(self._params, self._cfg["grad_clip"])
        else:
            norm = nn.utils.get_total_norm([p.grad for p in self._params if p.grad is not None])
        parts["optimizer"].step()
        self._scheduler.step()
        parts["optimizer"].zero_grad(set_to_none=True)
        return torch.stack([step_loss.float(), norm.float()])

    def _advance(self) -> None:
        pos, accum = self._pos, self._cfg["grad_accum_steps"]
        pos["step"] += 1
        pos["batch_index"] += accum
        tokens = accum * self._parts["train_windows"].tokens_per_batch
        pos["tokens_seen"] += tokens
        self._session_tokens += tokens
        if pos["batch_index"] // accum >= self._steps_per_epoch:
            pos["epoch"] += 1
            pos["batch_index"] = 0

    def _elapsed(self) -> float:
        return self._elapsed_before + time.time() - self._session_start

    def _out_of_time(self) -> bool:
        budget = self._cfg["time_budget_s"]
        return budget is not None and self._elapsed() >= budget

    def _follow_time_budget(self) -> None:
        """Under a time budget, size the schedule from the measured pace of steps, so the
        learning rate reaches its floor as the budget runs out."""
        budget = self._cfg["time_budget_s"]
        if budget is None:
            return
        step = self._pos["step"]
        planned = round(step * budget / max(self._elapsed(), 1e-9))
        self._schedule.total = min(self.total_steps, max(step + 1, planned))

    def _flush(self, window: list[Tensor]) -> float:
        """The one host sync: mean loss and gradient norms of the steps since the last flush,
        checked for NaN/inf, recorded in the history and watched for health."""
        rows = torch.stack(window)
        mean, mean_norm, max_norm = self._across_ranks(
            torch.cat([rows.mean(0), rows[:, 1].max()[None]])
        )
        step = self._pos["step"]
        if not math.isfinite(mean) or not math.isfinite(max_norm):
            raise ModelTrainerError(
                "TRAINING_NAN_LOSS",
                f"loss became {mean} (gradient norm {max_norm}) by step {step}; "
                "lower learning_rate or set grad_clip",
                details={"step": step},
            )
        metrics = self._step_metrics(mean, mean_norm)
        self._record(
            {
                "step": step,
                "epoch": metrics["epoch"],
                "loss": metrics["loss"],
                "val_loss": None,
                "learning_rate": metrics["learning_rate"],
                "grad_norm": metrics["grad_norm"],
                "tokens_per_second": metrics["tokens_per_second"],
                "elapsed_s": metrics["elapsed_s"],
            }
        )
        self._raise_alerts(self._health.check_gradients(step, mean_norm, max_norm))
        progress = self._callbacks["progress"]
        if progress is not None:
            progress(metrics)
        return float(mean)

    def _across_ranks(self, summary: Tensor) -> list[float]:
        """The report's (loss, mean norm, max norm) as host floats. Across ranks, in the same
        one collective: their mean (each rank's loss is over its share of the batch, so the
        mean is the whole batch's; gradients are already averaged, so norms agree) and rank
        0's answer to `cancelled`."""
        if self._ranks == 1:
            return [float(value) for value in summary.tolist()]
        asked = self._main and self._callbacks["cancelled"]()
        flag = torch.tensor([float(asked)], device=summary.device)
        *values, cancel = distributed.sum_across(torch.cat([summary / self._ranks, flag])).tolist()
        self._cancel_seen = cancel > 0.0
        return [float(value) for value in values]

    def _record(self, point: MetricPoint) -> None:
        self._last_point = point
        target = self._parts["metrics_file"]
        if target is not None:
            append_point(target, point)

    def _raise_alerts(self, alerts: list[TrainingAlert]) -> None:
        notify = self._callbacks["alert"]
        if notify is not None:
            for alert in alerts:
                notify(alert)

    def _step_metrics(self, loss: float, grad_norm: float) -> StepMetrics:
        """Throughput counts training time only; validation time is left out of tokens/s."""
        elapsed = time.time() - self._session_start
        training = max(elapsed - self._eval_seconds, 1e-9)
        return {
            "epoch": self._pos["epoch"],
            "step": self._pos["step"],
            "total_steps": self._schedule.total,
            "loss": loss,
            "learning_rate": float(self._scheduler.get_last_lr()[0]),
            "grad_norm": grad_norm,
            "tokens_per_second": self._session_tokens / training,
            "elapsed_s": self._elapsed_before + elapsed,
        }

    def _metrics(self, train_loss: float) -> EvalMetrics:
        val = self._parts["val_windows"]
        val_loss = None
        if val is not None and self._main:  # the others wait for its decisions
            started = time.time()
            val_loss = evaluate_loss(
                self._model,
                val,
                loss_fn=self._parts["loss_fn"],
                device=self._parts["device"],
                bf16=self._cfg["bf16"],
                max_batches=self._cfg["eval_max_batches"],
            )
            self._eval_seconds += time.time() - started
        step_metrics = self._step_metrics(train_loss, 0.0)
        last = self._last_point  # the report at this step: evaluations always follow one
        if val_loss is not None and last is not None:
            self._record({**last, "val_loss": val_loss})
            self._raise_alerts(self._health.check_validation(self._pos["step"], val_loss))
            self._report_validation(last, val_loss)
        metrics: EvalMetrics = {
            "epoch": self._pos["epoch"],
            "step": self._pos["step"],
            "total_steps": self._schedule.total,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "tokens_seen": self._pos["tokens_seen"],
            "elapsed_s": step_metrics["elapsed_s"],
            "tokens_per_second": step_metrics["tokens_per_second"],
        }
        self._last_eval = metrics
        return metrics

    def _report_validation(self, last: MetricPoint, val_loss: float) -> None:
        """The step's report again, with its validation loss, to the evaluation callback."""
        evaluated = self._callbacks.get("evaluated")
        if evaluated is not None:
            evaluated(
                {
                    "epoch": last["epoch"],
                    "step": last["step"],
                    "total_steps": self._schedule.total,
                    "loss": last["loss"],
                    "learning_rate": last["learning_rate"],
                    "grad_norm": last["grad_norm"],
                    "tokens_per_second": last["tokens_per_second"],
                    "elapsed_s": last["elapsed_s"],
                    "val_loss": val_loss,
                }
            )

    def _beat(self, now: float) -> float:
        """Call the heartbeat and return when the next one is due (a clock read, not Redis)."""
        self._callbacks["heartbeat"](now)
        return now + self._cfg["heartbeat_interval_s"]

    def _checkpoint(self) -> Path | None:
        directory = self._parts["checkpoint_dir"]
        if directory is None:
            return None
        self._pos["elapsed_s"] = self._elapsed_before + time.time() - self._session_start
        path = save_checkpoint(
            directory,
            model=self._model,
            optimizer=self._parts["optimizer"],
            scheduler=self._scheduler,
            state=self._pos,
            metrics=self._checkpoint_metrics(),
            keep_last=self._cfg["keep_checkpoints"],
            keep_best=self._cfg["keep_best_checkpoints"],
        )
        checkpointed = self._parts.get("checkpointed")
        if checkpointed is not None:
            checkpointed(path)
        return path

    def _checkpoint_metrics(self) -> CheckpointMetrics:
        """Losses measured at this very step; a cancel between reports has only the last
        training loss reported (and no validation loss)."""
        step, last, point = self._pos["step"], self._last_eval, self._last_point
        train_loss, val_loss = (None if point is None else point["loss"]), None
        if last is not None and last["step"] == step:
            train_loss, val_loss = last["train_loss"], last["val_loss"]
        return {
            "step": step,
            "epoch": self._pos["epoch"],
            "train_loss": train_loss,
            "val_loss": val_loss,
            "created_at": utc_now(),
        }

    def _stop_cancelled(self) -> None:
        saved = self._checkpoint()
        raise ModelTrainerError(
            "TRAINING_CANCELLED",
            f"training cancelled at step {self._pos['step']}",
            details={
                "step": self._pos["step"],
                "checkpoint": None if saved is None else str(saved),
            },
        )
