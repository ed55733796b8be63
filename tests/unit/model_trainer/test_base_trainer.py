"""The shared loop on a real tiny char-LSTM: NaN, cancellation, exact resume, accumulation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import Tensor

from model_trainer.backends.char_lstm import CharLSTMModel
from model_trainer.backends.presets import CHAR_LSTM_SIZES
from model_trainer.contracts.model import (
    StepMetrics,
    TrainingAlert,
    TrainingCallbacks,
    ValidationMetrics,
)
from model_trainer.contracts.train_config import TRAIN_DEFAULTS, make_train_config
from model_trainer.errors import ModelTrainerError
from model_trainer.storage.checkpoints import checkpoint_dirs, read_metrics
from model_trainer.storage.run_metrics import read_points
from model_trainer.training.base_trainer import BaseTrainer, EvalMetrics, LoopConfig
from model_trainer.training.checkpoint import latest_checkpoint
from model_trainer.training.data import TokenWindows
from model_trainer.training.evaluation import cross_entropy_loss
from model_trainer.training.health import HealthThresholds
from model_trainer.training.optim import make_optimizer

VOCAB = 20
CPU = torch.device("cpu")


def _tokens() -> Tensor:
    """A learnable stream: each token is the previous plus 3 (mod VOCAB)."""
    return (torch.arange(2_000) * 3) % VOCAB


def _model(seed: int = 3) -> CharLSTMModel:
    torch.manual_seed(seed)
    dims = CHAR_LSTM_SIZES["tiny"]
    return CharLSTMModel(
        {
            "model_family": "char_lstm",
            "model_size": "tiny",
            "vocab_size": VOCAB,
            "max_seq_len": 16,
            "embed_dim": dims["embed_dim"],
            "hidden_dim": dims["hidden_dim"],
            "num_layers": 2,
            "dropout": 0.2,
        }
    )


NO_ALERTS: HealthThresholds = {
    "grad_norm_max": None,
    "grad_norm_min": None,
    "val_loss_spike_ratio": None,
}


def _config(
    *,
    max_steps: int | None = None,
    grad_accum_steps: int = 1,
    eval_every_steps: int | None = None,
    checkpoint_every_steps: int | None = None,
    bf16: bool = False,
    patience: int | None = None,
    min_delta: float = 0.0,
    health: HealthThresholds = NO_ALERTS,
) -> LoopConfig:
    return {
        "num_epochs": 3,
        "max_steps": max_steps,
        "grad_accum_steps": grad_accum_steps,
        "grad_clip": 1.0,
        "lr_schedule": "cosine",
        "warmup_steps": 2,
        "min_lr_ratio": 0.1,
        "log_every_steps": 3,
        "eval_every_steps": eval_every_steps,
        "eval_max_batches": 2,
        "checkpoint_every_steps": checkpoint_every_steps,
        "keep_checkpoints": 2,
        "keep_best_checkpoints": 1,
        "early_stopping_patience": patience,
        "early_stopping_min_delta": min_delta,
        "health": health,
        "heartbeat_interval_s": 0.0,
        "time_budget_s": None,
        "bf16": bf16,
    }


class Recorder:
    """Callbacks that remember what the loop told them."""

    def __init__(
        self,
        cancel_after: int | None = None,
        prune: Callable[[int, float], bool] | None = None,
        validations: list[ValidationMetrics] | None = None,
    ) -> None:
        self.prune = prune
        self.validations = validations
        self.beats: list[float] = []
        self.progress: list[StepMetrics] = []
        self.alerts: list[TrainingAlert] = []
        self.cancel_checks = 0
        self.cancel_after = cancel_after

    def heartbeat(self, now: float) -> None:
        self.beats.append(now)

    def cancelled(self) -> bool:
        self.cancel_checks += 1
        return self.cancel_after is not None and self.cancel_checks > self.cancel_after

    def on_progress(self, metrics: StepMetrics) -> None:
        self.progress.append(metrics)

    def callbacks(self) -> TrainingCallbacks:
        callbacks: TrainingCallbacks = {
            "heartbeat": self.heartbeat,
            "cancelled": self.cancelled,
            "progress": self.on_progress,
            "alert": self.alerts.append,
            "prune": self.prune,
        }
        if self.validations is not None:
            callbacks["evaluated"] = self.validations.append
        return callbacks


def _trainer(
    model: CharLSTMModel,
    cfg: LoopConfig,
    recorder: Recorder,
    *,
    checkpoint_dir: Path | None = None,
    loss_fn: Callable[[Tensor, Tensor], Tensor] = cross_entropy_loss,
    with_val: bool = True,
    metrics_file: Path | None = None,
) -> BaseTrainer:
    tokens = _tokens()
    val = TokenWindows(tokens[1_600:], seq_len=16, batch_size=8, seed=5, shuffle=False)
    return BaseTrainer(
        {
            "model": model,
            "optimizer": make_optimizer(
                model,
                make_train_config(
                    model_family="char_lstm",
                    model_size="tiny",
                    corpus_path="-",
                    options={**TRAIN_DEFAULTS, "learning_rate": 1e-2, "weight_decay": 0.1},
                ),
                CPU,
            ),
            "loss_fn": loss_fn,
            "train_windows": TokenWindows(
                tokens[:1_600], seq_len=16, batch_size=8, seed=5, shuffle=True
            ),
            "val_windows": val if with_val else None,
            "device": CPU,
            "checkpoint_dir": checkpoint_dir,
            "metrics_file": metrics_file,
        },
        cfg,
        recorder.callbacks(),
    )


def _params(model: CharLSTMModel) -> dict[str, Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


# 1600 tokens, seq 16 -> 99 windows; batch 8 -> 12 batches (= steps) per epoch; 3 epochs.
STEPS_PER_EPOCH = 12


def test_trains_and_yields_metrics_at_each_epoch_end() -> None:
    recorder = Recorder()
    trainer = _trainer(_model(), _config(), recorder)
    history: list[EvalMetrics] = list(trainer.train())
    assert trainer.total_steps == 3 * STEPS_PER_EPOCH
    assert [m["step"] for m in history] == [12, 24, 36]
    assert [m["epoch"] for m in history] == [1, 2, 3]
    assert history[-1]["tokens_seen"] == 36 * 8 * 16
    val_losses = [m["val_loss"] for m in history]
    assert all(v is not None for v in val_losses)
    first, last = history[0]["val_loss"], history[-1]["val_loss"]
    assert first is not None and last is not None and last < first
    assert trainer.resumed_from_step is None


def test_max_steps_is_the_whole_run_repeating_the_corpus_past_num_epochs() -> None:
    """num_epochs never cuts max_steps short (validators keep it at 1 when max_steps is set)."""
    cfg: LoopConfig = {**_config(max_steps=30), "num_epochs": 1}
    trainer = _trainer(_model(), cfg, Recorder())
    history = list(trainer.train())
    assert trainer.total_steps == 30 > STEPS_PER_EPOCH
    assert [m["step"] for m in history] == [12, 24, 30]
    assert history[-1]["epoch"] == 2  # 30 steps: two whole epochs and half of a third


def test_progress_at_log_intervals_and_heartbeat_every_interval() -> None:
    recorder = Recorder()
    list(_trainer(_model(), _config(max_steps=7), recorder).train())
    assert [m["step"] for m in recorder.progress] == [3, 6, 7]
    assert all(m["total_steps"] == 7 for m in recorder.progress)
    assert all(m["tokens_per_second"] > 0 and m["learning_rate"] > 0 for m in recorder.progress)
    # interval 0 s: one beat at start, then one before every step
    assert len(recorder.beats) == 1 + 7
    assert recorder.beats == sorted(recorder.beats)
    assert recorder.cancel_checks == 7


def test_eval_every_steps_yields_between_epochs() -> None:
    history = list(
        _trainer(_model(), _config(max_steps=14, eval_every_steps=5), Recorder()).train()
    )
    assert [m["step"] for m in history] == [5, 10, 12, 14]


def test_each_validation_is_reported_with_the_report_at_its_step() -> None:
    validations: list[ValidationMetrics] = []
    recorder = Recorder(validations=validations)
    history = list(_trainer(_model(), _config(max_steps=14, eval_every_steps=5), recorder).train())
    assert [(v["step"], v["val_loss"]) for v in validations] == [
        (m["step"], m["val_loss"]) for m in history
    ]
    reports = {m["step"]: m for m in recorder.progress}
    for validation in validations:
        report = reports[validation["step"]]
        assert {**validation, "val_loss": None} == {**report, "val_loss": None}


def test_without_validation_windows_val_loss_is_none() -> None:
    history = list(_trainer(_model(), _config(max_steps=2), Recorder(), with_val=False).train())
    assert [m["val_loss"] for m in history] == [None]


def test_gradient_accumulation_counts_micro_batches() -> None:
    trainer = _trainer(_model(), _config(grad_accum_steps=2), Recorder())
    history = list(trainer.train())
    assert trainer.total_steps == 3 * STEPS_PER_EPOCH // 2
    assert history[-1]["tokens_seen"] == trainer.total_steps * 2 * 8 * 16
    assert [m["epoch"] for m in history] == [1, 2, 3]


def test_accumulation_larger_than_an_epoch_is_rejected() -> None:
    with pytest.raises(ModelTrainerError) as caught:
        _trainer(_model(), _config(grad_accum_steps=13), Recorder())
    assert caught.value.code == "INVALID_CONFIG"
    assert caught.value.details["field"] == "grad_accum_steps"


def test_bf16_autocast_trains_on_cpu() -> None:
    history = list(_trainer(_model(), _config(max_steps=3, bf16=True), Recorder()).train())
    val = history[-1]["val_loss"]
    assert val is not None and 0.0 < val < 10.0


def test_nan_loss_stops_training_with_its_code() -> None:
    calls = [0]

    def poisoned(logits: Tensor, targets: Tensor) -> Tensor:
        calls[0] += 1
        loss = cross_entropy_loss(logits, targets)
        return loss * float("nan") if calls[0] > 4 else loss

    recorder = Recorder()
    with pytest.raises(ModelTrainerError) as caught:
        list(_trainer(_model(), _config(), recorder, loss_fn=poisoned).train())
    assert caught.value.code == "TRAINING_NAN_LOSS"
    # the loss turned NaN at step 5; the next log interval (step 6) catches it
    assert caught.value.details["step"] == 6
    assert [m["step"] for m in recorder.progress] == [3]


def test_cancel_stops_at_next_step_and_keeps_a_checkpoint(tmp_path: Path) -> None:
    recorder = Recorder(cancel_after=5)
    with pytest.raises(ModelTrainerError) as caught:
        list(_trainer(_model(), _config(), recorder, checkpoint_dir=tmp_path).train())
    assert caught.value.code == "TRAINING_CANCELLED"
    assert caught.value.details["step"] == 5
    saved = latest_checkpoint(tmp_path)
    assert saved is not None and saved.name == "step_000000005"
    assert caught.value.details["checkpoint"] == str(saved)
    assert sorted(p.name for p in saved.iterdir()) == [
        "digests.json",
        "metrics.json",
        "model.safetensors",
        "state.json",
        "training.safetensors",
    ]
    # a cancel between reports keeps the last reported training loss, and no val_loss
    metrics = read_metrics(saved)
    assert (metrics["step"], metrics["val_loss"]) == (5, None)
    assert metrics["train_loss"] == recorder.progress[-1]["loss"]


def test_cancel_without_checkpoint_dir_reports_none() -> None:
    with pytest.raises(ModelTrainerError) as caught:
        list(_trainer(_model(), _config(), Recorder(cancel_after=0)).train())
    assert caught.value.details == {"step": 0, "checkpoint": None}


def test_periodic_checkpoints_keep_the_newest(tmp_path: Path) -> None:
    list(
        _trainer(
            _model(), _config(checkpoint_every_steps=4), Recorder(), checkpoint_dir=tmp_path
        ).train()
    )
    # step 36 is the end of training: the final weights are saved by the backend, not here
    assert [p.name for p in checkpoint_dirs(tmp_path)] == ["step_000000028", "step_000000032"]


@pytest.mark.parametrize("accum", [1, 2])
def test_interrupted_then_resumed_run_ends_with_identical_weights(
    tmp_path: Path, accum: int
) -> None:
    straight = _model()
    list(_trainer(straight, _config(grad_accum_steps=accum), Recorder()).train())

    interrupted = _trainer(
        _model(), _config(grad_accum_steps=accum), Recorder(cancel_after=7), checkpoint_dir=tmp_path
    )
    with pytest.raises(ModelTrainerError):
        list(interrupted.train())

    torch.manual_seed(1234)  # the resumed process starts from a different RNG state
    resumed = _model(seed=99)  # and different initial weights
    trainer = _trainer(
        resumed, _config(grad_accum_steps=accum), Recorder(), checkpoint_dir=tmp_path
    )
    checkpoint = latest_checkpoint(tmp_path)
    assert checkpoint is not None
    trainer.resume(checkpoint)
    assert trainer.resumed_from_step == 7
    history = list(trainer.train())
    assert history[-1]["step"] == trainer.total_steps

    expected, got = _params(straight), _params(resumed)
    assert expected.keys() == got.keys()
    for name, tensor in expected.items():
        assert torch.equal(tensor, got[name]), name


def test_training_without_clipping_changes_the_weights() -> None:
    model = _model()
    before = _params(model)
    cfg = _config(max_steps=2)
    cfg["grad_clip"] = None
    list(_trainer(model, cfg, Recorder()).train())
    assert any(not torch.equal(before[n], p) for n, p in _params(model).items())


def test_a_time_budget_ends_training_early_with_the_schedule_annealed() -> None:
    cfg = _config()
    cfg["num_epochs"] = 10_000
    cfg["time_budget_s"] = 1.0
    cfg["log_every_steps"] = 1
    recorder = Recorder()
    trainer = _trainer(_model(), cfg, recorder)
    history = list(trainer.train())
    final = history[-1]
    assert final["step"] < trainer.total_steps
    assert final["total_steps"] == final["step"]
    assert trainer.stop_reason == "time_budget"
    assert 1.0 <= final["elapsed_s"] < 6.0
    # the planned length followed the pace, so the rate decayed toward its floor
    rates = [m["learning_rate"] for m in recorder.progress]
    assert rates[-1] < 0.5 * max(rates)
    assert [m["total_steps"] for m in recorder.progress][-1] == final["step"]


def test_early_stopping_ends_the_run_when_val_loss_stops_improving() -> None:
    """min_delta larger than any possible gain: the second evaluation is already stale."""
    trainer = _trainer(
        _model(), _config(eval_every_steps=2, patience=1, min_delta=10.0), Recorder()
    )
    history = list(trainer.train())
    assert [m["step"] for m in history] == [2, 4]
    assert trainer.stop_reason == "early_stopping"
    best = min(history, key=lambda m: m["val_loss"] or 0.0)
    assert (trainer.best_val_loss, trainer.best_step) == (best["val_loss"], best["step"])


def test_a_pruned_trial_stops_at_the_evaluation_its_pruner_judges_hopeless() -> None:
    reports: list[tuple[int, float]] = []

    def prune(step: int, val_loss: float) -> bool:
        reports.append((step, val_loss))
        return step >= 4

    trainer = _trainer(_model(), _config(eval_every_steps=2), Recorder(prune=prune))
    history = list(trainer.train())
    assert [m["step"] for m in history] == [2, 4]
    assert [(step, loss) for step, loss in reports] == [(m["step"], m["val_loss"]) for m in history]
    assert trainer.stop_reason == "pruned"


def test_patience_counts_evaluations_without_improvement() -> None:
    trainer = _trainer(_model(), _config(eval_every_steps=2, patience=3), Recorder())
    history = list(trainer.train())
    # learning steadily, val loss keeps improving: the run goes its whole length
    assert history[-1]["step"] == 3 * STEPS_PER_EPOCH
    assert trainer.stop_reason == "completed"


def test_gradient_alerts_are_raised_once_per_crossing() -> None:
    recorder = Recorder()
    high: HealthThresholds = {**NO_ALERTS, "grad_norm_max": 1e-6}
    list(_trainer(_model(), _config(max_steps=9, health=high), recorder).train())
    assert [(a["kind"], a["step"]) for a in recorder.alerts] == [("exploding_gradients", 3)]
    alert = recorder.alerts[0]
    assert alert["value"] > alert["threshold"] == 1e-6
    assert alert["value"] == pytest.approx(max(m["grad_norm"] for m in recorder.progress[:1]), 10)
    assert "exploding gradients: gradient norm" in alert["message"]

    recorder = Recorder()
    low: HealthThresholds = {**NO_ALERTS, "grad_norm_min": 1e6}
    list(_trainer(_model(), _config(max_steps=3, health=low), recorder).train())
    assert [(a["kind"], a["step"]) for a in recorder.alerts] == [("vanishing_gradients", 3)]
    assert recorder.alerts[0]["value"] == pytest.approx(recorder.progress[0]["grad_norm"])


def test_the_history_file_has_every_report_and_each_evaluation(tmp_path: Path) -> None:
    recorder = Recorder()
    history_file = tmp_path / "metrics.jsonl"
    trainer = _trainer(
        _model(),
        _config(max_steps=7, eval_every_steps=6),
        recorder,
        metrics_file=history_file,
    )
    evaluations = list(trainer.train())
    points = read_points(history_file)
    assert [p["step"] for p in points] == [m["step"] for m in recorder.progress] == [3, 6, 7]
    assert [p["loss"] for p in points] == [m["loss"] for m in recorder.progress]
    assert [p["grad_norm"] for p in points] == [m["grad_norm"] for m in recorder.progress]
    assert [p["val_loss"] for p in points] == [None, *(m["val_loss"] for m in evaluations)]
    assert all(m["grad_norm"] > 0 for m in recorder.progress)
