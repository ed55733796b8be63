from __future__ import annotations

import contextlib

import pytest
import torch

from model_trainer.contracts.model import DeviceChoice
from model_trainer.errors import ModelTrainerError
from model_trainer.training.device import (
    autocast,
    configure_fast_math,
    pick_device,
    resolve_device,
    uses_bf16,
)


@pytest.mark.parametrize(
    ("choice", "cuda_ok", "mps_ok", "expected"),
    [
        ("auto", True, True, "cuda"),
        ("auto", False, True, "mps"),
        ("auto", False, False, "cpu"),
        ("cpu", True, True, "cpu"),
        ("cuda", True, False, "cuda"),
        ("mps", False, True, "mps"),
    ],
)
def test_pick_device_prefers_cuda_then_mps_then_cpu(
    choice: DeviceChoice, cuda_ok: bool, mps_ok: bool, expected: str
) -> None:
    assert pick_device(choice, cuda_ok=cuda_ok, mps_ok=mps_ok) == expected


@pytest.mark.parametrize("choice", ["cuda", "mps"])
def test_missing_accelerator_is_a_coded_error(choice: DeviceChoice) -> None:
    with pytest.raises(ModelTrainerError) as caught:
        pick_device(choice, cuda_ok=False, mps_ok=False)
    assert caught.value.code == "CUDA_NOT_AVAILABLE"
    assert caught.value.http_status == 503


def test_resolve_device_on_this_machine() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")


def test_bf16_defaults_to_cuda_only() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert uses_bf16("auto", cuda) is True
    assert uses_bf16("auto", cpu) is False
    assert uses_bf16("bf16", cpu) is True
    assert uses_bf16("fp32", cuda) is False


def test_autocast_off_is_a_null_context_and_on_computes_in_bf16() -> None:
    cpu = torch.device("cpu")
    assert isinstance(autocast(cpu, bf16=False), contextlib.nullcontext)
    a = torch.ones(4, 4)
    with autocast(cpu, bf16=True):
        assert (a @ a).dtype == torch.bfloat16
    with autocast(cpu, bf16=False):
        assert (a @ a).dtype == torch.float32


def test_fast_math_leaves_cpu_settings_alone() -> None:
    before = torch.backends.cuda.matmul.allow_tf32
    configure_fast_math(torch.device("cpu"))
    assert torch.backends.cuda.matmul.allow_tf32 == before
