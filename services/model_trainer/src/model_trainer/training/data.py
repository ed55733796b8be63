"""Token windows for causal language modelling, in an order reproducible from (seed, epoch).

The order of batches is a pure function of the seed, the epoch and the batch index, so a
resumed run needs only (epoch, batch index) to continue exactly where it stopped.

Several processes training together (training/distributed.py) each read the same batches and
keep their own equal share of each one's rows: together they see what one process would.
"""

from __future__ import annotations

import torch
from torch import Tensor

from model_trainer.errors import ModelTrainerError


class TokenWindows:
    """Non-overlapping windows of `seq_len + 1` tokens, shifted and shuffled each epoch."""

    def __init__(
        self,
        tokens: Tensor,
        *,
        seq_len: int,
        batch_size: int,
        seed: int,
        shuffle: bool,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        """`shard` is (rank, ranks): this process keeps the rank-th of `ranks` equal parts of
        every batch (a batch the corpus cuts short is cut to a multiple of `ranks`)."""
        windows = (tokens.numel() - seq_len) // seq_len
        if windows < 1:
            raise ModelTrainerError(
                "CORPUS_EMPTY",
                f"corpus of {tokens.numel()} tokens is too short for max_seq_len={seq_len}",
                details={"tokens": tokens.numel(), "max_seq_len": seq_len},
            )
        self._tokens = tokens.to(torch.long)
        self._seq_len = seq_len
        rank, ranks = shard
        self._batch_size = min(batch_size, windows) // ranks * ranks
        if self._batch_size < 1:
            raise ModelTrainerError(
                "CORPUS_EMPTY",
                f"corpus has {windows} windows of max_seq_len={seq_len}, fewer than the "
                f"{ranks} processes training on it",
                details={"windows": windows, "num_processes": ranks},
            )
        self._share = self._batch_size // ranks
        self._first_row = rank * self._share
        self._windows = windows
        self._seed = seed
        self._shuffle = shuffle
        self._offsets = torch.arange(seq_len + 1)
        self._epoch = -1
        self._starts = torch.empty(0, dtype=torch.long)

    @property
    def batches_per_epoch(self) -> int:
        return self._windows // self._batch_size

    @property
    def tokens_per_batch(self) -> int:
        """The whole batch's, over every process."""
        return self._batch_size * self._seq_len

    def batch(self, epoch: int, index: int) -> tuple[Tensor, Tensor]:
        """Inputs and next-token targets, each (this process's share of the batch, seq_len)."""
        if epoch != self._epoch:
            self._starts = self._epoch_starts(epoch)
            self._epoch = epoch
        first = index * self._batch_size + self._first_row
        starts = self._starts[first : first + self._share]
        rows = self._tokens[starts[:, None] + self._offsets[None, :]]
        return rows[:, :-1], rows[:, 1:]

    def _epoch_starts(self, epoch: int) -> Tensor:
        if not self._shuffle:
            return torch.arange(self._windows) * self._seq_len
        gen = torch.Generator().manual_seed(self._seed * 1_000_003 + epoch)
        shift = int(torch.randint(self._seq_len, (1,), generator=gen))
        order = torch.randperm(self._windows, generator=gen)
        return order * self._seq_len + shift


def split_tokens(tokens: Tensor, val_fraction: float) -> tuple[Tensor, Tensor]:
    """Head for training, tail for validation (a contiguous split, so no window leaks across)."""
    n_val = int(tokens.numel() * val_fraction)
    return tokens[: tokens.numel() - n_val], tokens[tokens.numel() - n_val :]
