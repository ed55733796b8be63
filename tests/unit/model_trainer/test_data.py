from __future__ import annotations

import pytest
import torch

from model_trainer.errors import ModelTrainerError
from model_trainer.training.data import TokenWindows, split_tokens


def test_batches_are_next_token_pairs_from_the_stream() -> None:
    tokens = torch.arange(1_000)
    windows = TokenWindows(tokens, seq_len=10, batch_size=4, seed=1, shuffle=True)
    inputs, targets = windows.batch(0, 0)
    assert inputs.shape == targets.shape == (4, 10)
    assert torch.equal(targets, inputs + 1)  # consecutive tokens: the stream is arange
    assert windows.batches_per_epoch == ((1_000 - 10) // 10) // 4
    assert windows.tokens_per_batch == 40


def test_order_is_a_pure_function_of_seed_epoch_and_index() -> None:
    tokens = torch.arange(5_000)
    a = TokenWindows(tokens, seq_len=16, batch_size=8, seed=3, shuffle=True)
    b = TokenWindows(tokens, seq_len=16, batch_size=8, seed=3, shuffle=True)
    # b reads epoch 1 first: a cached epoch must not change what epoch 0 gives
    b_epoch1 = b.batch(1, 2)[0]
    assert torch.equal(a.batch(0, 5)[0], b.batch(0, 5)[0])
    assert torch.equal(a.batch(1, 2)[0], b_epoch1)
    assert not torch.equal(a.batch(0, 2)[0], a.batch(1, 2)[0])
    other_seed = TokenWindows(tokens, seq_len=16, batch_size=8, seed=4, shuffle=True)
    assert not torch.equal(a.batch(0, 0)[0], other_seed.batch(0, 0)[0])


def test_an_epoch_covers_distinct_windows_in_bounds() -> None:
    tokens = torch.arange(2_000)
    windows = TokenWindows(tokens, seq_len=10, batch_size=7, seed=0, shuffle=True)
    starts = torch.cat([windows.batch(2, i)[0][:, 0] for i in range(windows.batches_per_epoch)])
    assert len(set(starts.tolist())) == starts.numel()
    assert int(starts.max()) + 10 < 2_000


def test_unshuffled_windows_are_in_stream_order() -> None:
    windows = TokenWindows(torch.arange(100), seq_len=10, batch_size=3, seed=0, shuffle=False)
    assert windows.batch(0, 1)[0][:, 0].tolist() == [30, 40, 50]


def test_batch_size_is_capped_by_the_windows_available() -> None:
    windows = TokenWindows(torch.arange(50), seq_len=10, batch_size=64, seed=0, shuffle=False)
    assert windows.batches_per_epoch == 1
    assert windows.batch(0, 0)[0].shape == (4, 10)


def test_a_corpus_shorter_than_two_windows_is_rejected() -> None:
    with pytest.raises(ModelTrainerError) as caught:
        TokenWindows(torch.arange(15), seq_len=10, batch_size=2, seed=0, shuffle=True)
    assert caught.value.code == "CORPUS_EMPTY"
    assert caught.value.details == {"tokens": 15, "max_seq_len": 10}


def test_split_keeps_the_tail_for_validation() -> None:
    train, val = split_tokens(torch.arange(100), 0.1)
    assert train.tolist() == list(range(90))
    assert val.tolist() == list(range(90, 100))
    train_all, val_none = split_tokens(torch.arange(100), 0.0)
    assert train_all.numel() == 100 and val_none.numel() == 0


def test_shards_of_a_batch_are_equal_and_together_the_whole_batch() -> None:
    tokens = torch.arange(1_000)
    whole = TokenWindows(tokens, seq_len=10, batch_size=6, seed=2, shuffle=True)
    shards = [
        TokenWindows(tokens, seq_len=10, batch_size=6, seed=2, shuffle=True, shard=(rank, 3))
        for rank in range(3)
    ]
    for index in (0, 4):
        parts = [shard.batch(1, index)[0] for shard in shards]
        assert [part.shape[0] for part in parts] == [2, 2, 2]
        assert torch.equal(torch.cat(parts), whole.batch(1, index)[0])
    assert shards[0].tokens_per_batch == whole.tokens_per_batch == 60
    assert shards[0].batches_per_epoch == whole.batches_per_epoch


def test_a_short_corpus_cuts_the_batch_to_a_multiple_of_the_processes() -> None:
    tokens = torch.arange(60)  # 5 windows of 10
    windows = TokenWindows(tokens, seq_len=10, batch_size=8, seed=0, shuffle=False, shard=(1, 2))
    assert windows.batch(0, 0)[0].shape == (2, 10)
    assert windows.tokens_per_batch == 40
    with pytest.raises(ModelTrainerError) as caught:
        TokenWindows(tokens, seq_len=10, batch_size=8, seed=0, shuffle=False, shard=(0, 6))
    assert caught.value.code == "CORPUS_EMPTY"
    assert caught.value.details == {"windows": 5, "num_processes": 6}
