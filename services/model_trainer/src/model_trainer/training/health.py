"""Gradient and validation health (seed 000's GradientMonitor and alert thresholds).

It reads figures the loop already has on the host (the gradient norms come back in the same
device sync as the loss), so watching costs no extra synchronisation. Each alert is raised
once when its threshold is crossed and again only after the value returned within it, so a
run stuck in a bad state does not flood its subscribers.
"""

from __future__ import annotations

from typing import TypedDict

from model_trainer.contracts.model import AlertKind, TrainingAlert


class HealthThresholds(TypedDict):
    grad_norm_max: float | None
    grad_norm_min: float | None
    val_loss_spike_ratio: float | None


class HealthMonitor:
    def __init__(self, thresholds: HealthThresholds) -> None:
        self._limits = thresholds
        self._raised: set[AlertKind] = set()
        self._best_val: float | None = None

    def check_gradients(self, step: int, mean_norm: float, max_norm: float) -> list[TrainingAlert]:
        """Largest norm since the last report against the ceiling, mean against the floor."""
        high, low = self._limits["grad_norm_max"], self._limits["grad_norm_min"]
        alerts: list[TrainingAlert] = []
        if high is not None:
            alerts += self._edge(
                "exploding_gradients", max_norm > high, step=step, value=max_norm, threshold=high
            )
        if low is not None:
            alerts += self._edge(
                "vanishing_gradients", mean_norm < low, step=step, value=mean_norm, threshold=low
            )
        return alerts

    def check_validation(self, step: int, val_loss: float) -> list[TrainingAlert]:
        """A validation loss more than the ratio above the best seen so far is a spike."""
        ratio, best = self._limits["val_loss_spike_ratio"], self._best_val
        self._best_val = val_loss if best is None else min(best, val_loss)
        if ratio is None or best is None:
            return []
        ceiling = best * (1.0 + ratio)
        return self._edge(
            "val_loss_spike", val_loss > ceiling, step=step, value=val_loss, threshold=ceiling
        )

    def _edge(
        self, kind: AlertKind, crossed: bool, *, step: int, value: float, threshold: float
    ) -> list[TrainingAlert]:
        if not crossed:
            self._raised.discard(kind)
            return []
        if kind in self._raised:
            return []
        self._raised.add(kind)
        name = "val_loss" if kind == "val_loss_spike" else "gradient norm"
        side = "below" if kind == "vanishing_gradients" else "above"
        message = f"{kind.replace('_', ' ')}: {name} {value:.4g} is {side} {threshold:.4g}"
        return [
            {
                "kind": kind,
                "step": step,
                "value": value,
                "threshold": threshold,
                "message": f"{message} at step {step}",
            }
        ]
