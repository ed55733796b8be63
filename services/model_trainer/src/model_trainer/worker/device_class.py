"""The device class a worker advertises (`cpu` or `cuda`): found once as it starts, or set.

A CUDA worker listens on the CUDA queues before the ordinary ones (`contracts.jobs.
worker_rq_queues`), so jobs that need CUDA reach only machines that have it. The finding runs
torch in a throwaway interpreter: the worker process itself stays free of torch and of any CUDA
context (its SpawnWorker never forks one, and its startup stays fast); the cost is one torch
import, about a second, per worker start, and none when the class is set to `cpu`.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable

from model_trainer.contracts.jobs import WorkerDevice, WorkerDeviceChoice
from model_trainer.errors import ModelTrainerError

logger = logging.getLogger(__name__)

# Exits 0 only when torch imports and sees a CUDA device.
_PROBE = "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"
PROBE_TIMEOUT_S = 120


def cuda_present(*, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """Whether torch sees a CUDA device on this machine: False without torch, and False when
    the probe hangs (a wedged driver runs no jobs either)."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE], capture_output=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        logger.warning(
            "the CUDA probe gave no answer in %.0f s: taking this worker as cpu", timeout_s
        )
        return False
    return done.returncode == 0


def worker_device(
    choice: WorkerDeviceChoice, *, probe: Callable[[], bool] = cuda_present
) -> WorkerDevice:
    """`auto`: cuda when the probe finds CUDA, else cpu; `cpu` as set; `cuda` only where the
    probe finds it (a CPU machine claiming CUDA would take jobs it cannot run)."""
    if choice == "cpu":
        return "cpu"
    found = probe()
    if choice == "cuda" and not found:
        raise ModelTrainerError(
            "CUDA_NOT_AVAILABLE",
            "WORKER_DEVICE (or --device) is cuda but torch finds no CUDA device on this "
            "machine; use auto or cpu here",
        )
    return "cuda" if found else "cpu"
