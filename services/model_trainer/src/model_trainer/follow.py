"""Render a job's events as a live progress bar (the CLI's `follow` and `make run`)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TextIO

from model_trainer.client import ServerEvent
from platform_core.job_events import (
    JOB_EVENT_TYPES,
    decode_job_event,
    is_completed,
    is_failed,
    is_progress,
)
from platform_core.trainer_metrics_events import (
    decode_trainer_metrics_event,
    is_alert,
    is_completed_metrics,
    is_config,
)

BAR_WIDTH = 30


def bar(progress: float) -> str:
    progress = max(0.0, min(1.0, progress))
    filled = round(progress * BAR_WIDTH)
    return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {progress * 100:5.1f}%"


def render(events: Iterable[ServerEvent], out: TextIO | None = None) -> bool:
    """Print each event as it arrives; True when the job completed, False when it failed."""
    out = sys.stdout if out is None else out
    succeeded = False
    for event in events:
        if event["event"] in JOB_EVENT_TYPES:
            job_event = decode_job_event(event["data"])
            if is_progress(job_event):
                out.write(f"\r{bar(job_event['progress'])} {job_event['message']}")
            elif is_failed(job_event):
                out.write(f"\nfailed: {job_event['code']} ({job_event['error_kind']}): ")
                out.write(f"{job_event['message']}\n")
            elif is_completed(job_event):
                succeeded = True
                out.write("\ncompleted\n")
            else:
                out.write("started\n")
        else:
            metrics = decode_trainer_metrics_event(event["data"])
            if is_config(metrics):
                out.write(
                    f"training {metrics['model_family']}/{metrics['model_size']} "
                    f"({metrics.get('num_params', 0):,} parameters)\n"
                )
            elif is_completed_metrics(metrics):
                out.write(
                    f"\nfinal loss {metrics['loss']:.4f}, "
                    f"val loss {metrics.get('val_loss', float('nan')):.4f}"
                    f" ({metrics.get('stop_reason', 'completed')})\n"
                )
            elif is_alert(metrics):
                out.write(f"\nalert: {metrics['message']}\n")
        out.flush()
    return succeeded
