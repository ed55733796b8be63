"""Several processes training one model with torch.distributed (DistributedDataParallel).

Each process (a rank) joins the default process group that PyTorch's launcher set up through
the environment (RANK, WORLD_SIZE, MASTER_ADDR, ...; worker/train_ranks.py launches them), and
trains through the one loop, which wraps its model here. Outside a group every function below
answers as the only process would, so the loop reads the same either way.
"""

from __future__ import annotations

import contextlib
import os
from datetime import timedelta

import torch
from torch import Tensor, distributed, nn
from torch.nn.parallel import DistributedDataParallel


def world_size() -> int:
    return distributed.get_world_size() if distributed.is_initialized() else 1


def rank() -> int:
    return distributed.get_rank() if distributed.is_initialized() else 0


def join_group(device: torch.device, timeout_s: float) -> None:
    """Join the launcher's group: NCCL between GPUs, gloo between CPUs. Every collective waits
    at most `timeout_s`, so a rank that died or hangs fails the others instead of stalling."""
    backend = "nccl" if device.type == "cuda" else "gloo"
    distributed.init_process_group(backend, timeout=timedelta(seconds=timeout_s))


def share_cores(device: torch.device) -> None:
    """Ranks on CPU split this machine's cores between them (as torchrun does), instead of each
    running a thread per core and all of them fighting over every core."""
    if device.type != "cpu":
        return
    local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_ranks))


def leave_group() -> None:
    """Tear the group down (on success, failure and cancel alike); nothing when not in one."""
    if distributed.is_initialized():
        distributed.destroy_process_group()


def rank_device(device: torch.device) -> torch.device:
    """Each rank of a multi-GPU training takes the GPU of its local rank."""
    if device.type != "cuda" or not distributed.is_initialized():
        return device
    index = int(os.environ.get("LOCAL_RANK", "0"))  # cuda-only
    torch.cuda.set_device(index)  # cuda-only
    return torch.device("cuda", index)  # cuda-only


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """The module the loop runs forward and backward through: DDP's wrapper when several
    ranks train (it averages gradients during backward), else the model itself. DDP's
    constructor also copies rank 0's weights to every rank."""
    if world_size() == 1:
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def gradient_sync(net: nn.Module, *, sync: bool) -> contextlib.AbstractContextManager[None]:
    """Skip DDP's gradient all-reduce on micro-batches before the last of an accumulated step:
    gradients add up locally and travel once per optimizer step."""
    if sync or not isinstance(net, DistributedDataParallel):
        return contextlib.nullcontext()
    return net.no_sync()


def sum_across(values: Tensor) -> Tensor:
    """Sum a tensor over every rank, in place (a no-op for one process)."""
    if world_size() > 1:
        distributed.all_reduce(values, op=distributed.ReduceOp.SUM)
    return values


def from_rank0(flags: list[bool], device: torch.device) -> list[bool]:
    """Rank 0's decisions (stop early, pruned), the same on every rank, so all stop at one step."""
    if world_size() == 1:
        return flags
    shared = torch.tensor([float(flag) for flag in flags], device=device)
    distributed.broadcast(shared, src=0)
    return [value > 0.0 for value in shared.tolist()]
