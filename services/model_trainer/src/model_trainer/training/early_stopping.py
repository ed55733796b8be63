"""Stop a run whose validation loss has stopped improving (patience and min-delta)."""

from __future__ import annotations


class EarlyStopping:
    """`update` takes each evaluation's val loss and answers whether to stop; the best so far
    (loss and step) is kept for the outcome whether or not stopping is switched on."""

    def __init__(self, patience: int | None, min_delta: float) -> None:
        self._patience = patience
        self._min_delta = min_delta
        self._stale = 0
        self.best_loss: float | None = None
        self.best_step: int | None = None

    def update(self, step: int, val_loss: float) -> bool:
        best = self.best_loss
        if best is None or val_loss < best - self._min_delta:
            self.best_loss, self.best_step, self._stale = val_loss, step, 0
            return False
        if val_loss < best:  # better, though by less than min_delta: still the best model
            self.best_loss, self.best_step = val_loss, step
        self._stale += 1
        return self._patience is not None and self._stale >= self._patience
