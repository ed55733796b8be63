"""Render a job's events as it runs (the CLI's `follow`, `submit --follow` and `make run`).

On a terminal: a live progress bar (rich) with elapsed time, ETA, tokens/s, loss and val loss,
and the job's other events printed above it. Anywhere else (a pipe, a log file, CI): one plain
line per update, never a carriage return, so each line reads on its own.

Times come from the events' own `ts`, so a replayed history (following a job that started long
ago, or resuming after an API restart) shows when things happened, not when they were read.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn

from model_trainer.client import ServerEvent
from platform_core.job_events import (
    JOB_EVENT_TYPES,
    JobEventV1,
    decode_job_event,
    is_completed,
    is_failed,
    is_progress,
)
from platform_core.trainer_metrics_events import (
    TrainerMetricsEventV1,
    decode_trainer_metrics_event,
)


def clock(seconds: float) -> str:
    """`H:MM:SS`, as elapsed times and ETAs read."""
    return str(timedelta(seconds=round(max(0.0, seconds))))


class Tracker:
    """What the events so far say: how far the job is, how fast it goes, its losses."""

    def __init__(self) -> None:
        self.fraction = 0.0
        self.detail = ""
        self.tokens_per_second: float | None = None
        self.loss: float | None = None
        self.val_loss: float | None = None
        self.training = False
        self._started: datetime | None = None
        self._now = datetime.now(UTC)
        # Where this attempt's first progress report stood: the ETA is measured from there,
        # so a run resumed from a checkpoint is not credited with the work done before.
        self._anchor: tuple[float, datetime] | None = None

    def saw(self, ts: str | None) -> None:
        self._now = datetime.fromisoformat(ts) if ts else datetime.now(UTC)

    def started(self) -> None:
        self._started, self._anchor = self._now, None

    def progressed(self, fraction: float) -> None:
        self.fraction = max(0.0, min(1.0, fraction))
        if self._anchor is None:
            self._anchor = (self.fraction, self._now)

    def elapsed_s(self) -> float | None:
        if self._started is None:
            return None
        return (self._now - self._started).total_seconds()

    def eta_s(self) -> float | None:
        if self._anchor is None:
            return None
        done, since = self._anchor
        seconds = (self._now - since).total_seconds()
        if self.fraction <= done or seconds <= 0:
            return None
        return (1.0 - self.fraction) * seconds / (self.fraction - done)

    def stats(self) -> str:
        """`elapsed 0:00:12  ETA 0:01:40  12,345 tok/s  loss 2.1234  val 2.2345`, with what
        is known so far."""
        parts = []
        elapsed, eta = self.elapsed_s(), self.eta_s()
        if elapsed is not None:
            parts.append(f"elapsed {clock(elapsed)}")
        if eta is not None:
            parts.append(f"ETA {clock(eta)}")
        if self.tokens_per_second is not None:
            parts.append(f"{self.tokens_per_second:,.0f} tok/s")
        if self.loss is not None:
            parts.append(f"loss {self.loss:.4f}")
        if self.val_loss is not None:
            parts.append(f"val {self.val_loss:.4f}")
        return "  ".join(parts)


class PlainView:
    """One line per update, for pipes and files."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def __enter__(self) -> PlainView:
        return self

    def __exit__(self, *exc: object) -> None:
        self._out.flush()

    def note(self, text: str) -> None:
        self._out.write(f"{text}\n")
        self._out.flush()

    def update(self, tracker: Tracker) -> None:
        detail = f"  {tracker.detail}" if tracker.detail else ""
        self.note(f"{tracker.fraction * 100:5.1f}%{detail}  {tracker.stats()}".rstrip())


class LiveView:
    """A rich progress bar redrawn in place, with notes printed above it."""

    def __init__(self, out: TextIO) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            TaskProgressColumn(),
            TextColumn("{task.fields[stats]}"),
            console=Console(file=out),
            auto_refresh=False,
        )
        self._task: TaskID = self._progress.add_task("", total=1.0, stats="")

    def __enter__(self) -> LiveView:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def note(self, text: str) -> None:
        self._progress.console.print(text, markup=False, highlight=False)

    def update(self, tracker: Tracker) -> None:
        self._progress.update(
            self._task,
            completed=tracker.fraction,
            description=tracker.detail,
            stats=tracker.stats(),
            refresh=True,
        )


def render(events: Iterable[ServerEvent], out: TextIO | None = None) -> bool:
    """Show each event as it arrives; True when the job completed, False when it failed."""
    out = sys.stdout if out is None else out
    tracker = Tracker()
    view = LiveView(out) if out.isatty() else PlainView(out)
    succeeded = False
    with view:
        for event in events:
            if event["event"] in JOB_EVENT_TYPES:
                job_event = decode_job_event(event["data"])
                tracker.saw(job_event.get("ts"))
                succeeded = _job_event(job_event, tracker, view) or succeeded
            else:
                metrics = decode_trainer_metrics_event(event["data"])
                tracker.saw(metrics.get("ts"))
                _metrics_event(metrics, tracker, view)
    return succeeded


def _job_event(event: JobEventV1, tracker: Tracker, view: PlainView | LiveView) -> bool:
    """Says whether the job completed."""
    if is_progress(event):
        # A training's own reports (metrics events) carry its step and speed.
        if not tracker.training:
            tracker.detail = event["message"]
            tracker.progressed(event["progress"])
            view.update(tracker)
    elif is_failed(event):
        view.note(f"failed: {event['code']} ({event['error_kind']}): {event['message']}")
    elif is_completed(event):
        elapsed = tracker.elapsed_s()
        view.note("completed" if elapsed is None else f"completed in {clock(elapsed)}")
        return True
    else:
        tracker.started()
        view.note("started")
    return False


def _metrics_event(
    event: TrainerMetricsEventV1, tracker: Tracker, view: PlainView | LiveView
) -> None:
    # Narrowed by the `type` tag, so the last branch is the alert.
    if event["type"] == "trainer.metrics.config.v1":
        tracker.training = True
        view.note(
            f"training {event['model_family']}/{event['model_size']} "
            f"({event.get('num_params', 0):,} parameters)"
        )
    elif event["type"] == "trainer.metrics.progress.v1":
        total = event.get("total_steps")
        tracker.detail = f"step {event['step']}" + ("" if total is None else f"/{total}")
        if total:
            tracker.progressed(event["step"] / total)
        tracker.loss = event["loss"]
        tracker.tokens_per_second = event.get("tokens_per_second", tracker.tokens_per_second)
        tracker.val_loss = event.get("val_loss", tracker.val_loss)
        view.update(tracker)
    elif event["type"] == "trainer.metrics.completed.v1":
        val_loss = event.get("val_loss")
        val = "" if val_loss is None else f", val loss {val_loss:.4f}"
        view.note(f"final loss {event['loss']:.4f}{val} ({event.get('stop_reason', 'completed')})")
    else:
        view.note(f"alert: {event['message']}")
