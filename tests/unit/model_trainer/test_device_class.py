"""A worker's device class: cpu as set, found by a torch probe for auto, and cuda refused on a
machine where torch finds no CUDA (this one, and CI: neither has a GPU)."""

from __future__ import annotations

import fakeredis
import pytest
import torch

from model_trainer import cli
from model_trainer.errors import ModelTrainerError
from model_trainer.worker.device_class import cuda_present, worker_device
from model_trainer.worker.worker_entry import make_worker


def _never() -> bool:
    raise AssertionError("cpu needs no probe")


def test_cpu_is_taken_as_set_without_a_probe() -> None:
    assert worker_device("cpu", probe=_never) == "cpu"


def test_the_probe_sees_what_torch_sees() -> None:
    """Without a GPU (here and in CI) it finds none; it runs in its own interpreter."""
    assert cuda_present() is torch.cuda.is_available()


def test_a_probe_that_hangs_finds_no_cuda(caplog: pytest.LogCaptureFixture) -> None:
    assert cuda_present(timeout_s=0.01) is False
    assert "gave no answer" in caplog.text


def test_auto_is_cpu_and_cuda_is_refused_where_the_probe_finds_none() -> None:
    assert worker_device("auto", probe=lambda: False) == "cpu"
    with pytest.raises(ModelTrainerError) as refused:
        worker_device("cuda", probe=lambda: False)
    assert refused.value.code == "CUDA_NOT_AVAILABLE"
    assert "WORKER_DEVICE" in refused.value.message


def test_where_the_probe_finds_cuda_auto_and_cuda_are_cuda() -> None:
    assert worker_device("auto", probe=lambda: True) == "cuda"
    assert worker_device("cuda", probe=lambda: True) == "cuda"


def test_a_cuda_worker_listens_on_its_cuda_queues_first_and_says_so_in_its_name() -> None:
    worker = make_worker("train", fakeredis.FakeRedis(), "cuda")
    assert worker.queue_names() == [
        "train-cuda-high",
        "train-cuda",
        "train-cuda-low",
        "train-high",
        "train",
        "train-low",
    ]
    assert worker.name.startswith("cuda-train-")
    cpu = make_worker("infer", fakeredis.FakeRedis())
    assert cpu.queue_names() == ["infer-high", "infer", "infer-low"]
    assert cpu.name.startswith("cpu-infer-")


def test_the_worker_command_refuses_cuda_on_this_gpu_less_machine_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKER_DEVICE", "cuda")
    assert cli.main(["worker", "--queues", "train"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "no CUDA device" in err


def test_the_device_flag_overrides_the_setting(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """cpu needs no probe, so the next thing checked is Redis (none listens here)."""
    monkeypatch.setenv("WORKER_DEVICE", "cuda")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    assert cli.main(["worker", "--queues", "train", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach Redis" in err and "CUDA" not in err


def test_a_malformed_worker_device_is_one_line_too(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKER_DEVICE", "gpu")
    assert cli.main(["worker"]) == 2
    err = capsys.readouterr().err
    assert err == "error: INVALID_CONFIG: WORKER_DEVICE must be one of auto, cpu, cuda, got 'gpu'\n"
