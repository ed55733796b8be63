"""Outside a process group the distributed helpers answer as the only process would, so the
loop runs unchanged; inside one (tests/integration/test_multiprocess_training.py) they talk."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from model_trainer.training import distributed

CPU = torch.device("cpu")


def test_one_process_is_rank_0_of_1_and_its_model_is_not_wrapped() -> None:
    model = nn.Linear(2, 2)
    assert (distributed.rank(), distributed.world_size()) == (0, 1)
    assert distributed.wrap(model, CPU) is model
    assert distributed.rank_device(CPU) == CPU
    assert distributed.rank_device(torch.device("cuda")) == torch.device("cuda")
    with distributed.gradient_sync(model, sync=False):
        model(torch.ones(1, 2)).sum().backward()
    assert model.weight.grad is not None


def test_collectives_of_one_process_change_nothing() -> None:
    values = torch.tensor([1.0, 2.0])
    assert distributed.sum_across(values) is values
    assert values.tolist() == [1.0, 2.0]
    assert distributed.from_rank0([True, False], CPU) == [True, False]
    distributed.leave_group()  # not in a group: nothing to tear down


@pytest.mark.parametrize(("local_ranks", "threads"), [("2", 1), ("1", 2)])
def test_ranks_on_one_machine_split_its_cores(
    monkeypatch: pytest.MonkeyPatch, local_ranks: str, threads: int
) -> None:
    monkeypatch.setenv("LOCAL_WORLD_SIZE", local_ranks)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    try:
        distributed.share_cores(CPU)
        assert torch.get_num_threads() == threads
        distributed.share_cores(torch.device("cuda"))  # GPUs: one each, threads untouched
        assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(2)
