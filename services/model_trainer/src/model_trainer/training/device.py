"""Pick the device and the precision a run uses."""

from __future__ import annotations

import contextlib
from typing import Literal

import torch
from torch import nn

from model_trainer.contracts.model import DeviceChoice, Precision
from model_trainer.errors import ModelTrainerError

DeviceType = Literal["cpu", "cuda", "mps"]


def pick_device(choice: DeviceChoice, *, cuda_ok: bool, mps_ok: bool) -> DeviceType:
    """`auto` prefers CUDA, then MPS, then CPU; an explicit accelerator must exist."""
    if choice == "auto":
        if cuda_ok:
            return "cuda"
        return "mps" if mps_ok else "cpu"
    if choice == "cuda" and not cuda_ok:
        raise ModelTrainerError("CUDA_NOT_AVAILABLE", "device 'cuda' requested but not available")
    if choice == "mps" and not mps_ok:
        raise ModelTrainerError("CUDA_NOT_AVAILABLE", "device 'mps' requested but not available")
    return choice


def resolve_device(choice: DeviceChoice) -> torch.device:
    """The torch device for a choice, checked against this machine."""
    return torch.device(
        pick_device(
            choice,
            cuda_ok=torch.cuda.is_available(),
            mps_ok=torch.backends.mps.is_available(),
        )
    )


def uses_bf16(precision: Precision, device: torch.device) -> bool:
    """bf16 autocast by default only on CUDA; CPU keeps fp32 unless asked."""
    if precision == "auto":
        return device.type == "cuda"
    return precision == "bf16"


def autocast(device: torch.device, *, bf16: bool) -> contextlib.AbstractContextManager[None]:
    """Mixed precision around forward passes; a no-op context when off (free on the hot path)."""
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def configure_fast_math(device: torch.device) -> None:
    """TF32 matmuls on CUDA: the usual speed-for-precision trade for training."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # cuda-only
        torch.backends.cudnn.allow_tf32 = True  # cuda-only


def compile_model(module: nn.Module, device: torch.device, *, enabled: bool) -> None:
    """torch.compile the module's forward in place when asked, on CUDA only.

    In place (`nn.Module.compile`), so parameters and state-dict keys stay as they are and
    checkpoints and saved runs are the same with or without it. On CPU it costs ~30 s of
    compilation and gains nothing at these sizes, so the flag is ignored there.
    """
    if enabled and device.type == "cuda":
        module.compile()  # cuda-only
