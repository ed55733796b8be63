"""What a warm char-LSTM generate spends sampling: the sampling decoder against `nn.LSTM` steps.

The inference worker's time on a warm 100-token generate is mostly the sampling loop. This
runs that loop (`CausalLMBackend.generate`'s: sample a token, feed it back) on one thread, as
the worker does, for a `small` char-LSTM with the service's decoder (`CharLSTMModel.decoder`:
a per-token gate table, one matmul per layer) and with the baseline that feeds each token
through `nn.LSTM` (`decoding(model.step)`), alternating rounds in the same process, and prints
the median milliseconds per 100 tokens of each and their ratio.

Run from the repository root: `python -m bench.char_lstm_sampling [--rounds 40]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as the inference worker runs

import torch
from bench.reference import machine_load, print_summary

from model_trainer.backends.causal_lm import decoding, make_generator, sample_next
from model_trainer.backends.char_lstm import CharLSTMModel
from model_trainer.backends.presets import char_lstm_dims
from model_trainer.contracts.model import Decoder

BENCHMARK = "char_lstm_sampling"
NEW_TOKENS = 100
VOCAB = 65  # tinyshakespeare's characters
PROMPT = [0, 30, 27, 25, 17, 27, 12, 1]
TARGET_RATIO = 0.75


def sample(decoder: Callable[[], Decoder]) -> float:
    """Milliseconds for NEW_TOKENS sampled tokens after the prompt, one sequence."""
    generator = make_generator(1, torch.device("cpu"))
    start = time.perf_counter()
    with torch.inference_mode():
        decode = decoder()
        last = decode(torch.tensor([PROMPT]))[:, -1, :]
        for _ in range(NEW_TOKENS):
            token = sample_next(last, temperature=1.0, top_k=0, top_p=1.0, generator=generator)
            last = decode(token[:, None])[:, -1, :]
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=40, help="alternating rounds (>= 2)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = CharLSTMModel(
        {
            "model_family": "char_lstm",
            "model_size": "small",
            "vocab_size": VOCAB,
            "max_seq_len": 256,
            **char_lstm_dims("small"),
        }
    ).eval()
    print(f"char_lstm_sampling: small char-LSTM, 1 thread, {machine_load()}", flush=True)
    ways: dict[str, Callable[[], Decoder]] = {
        "nn.LSTM steps": lambda: decoding(model.step),
        "sampling decoder": model.decoder,
    }
    for way in ways.values():  # warm both paths
        sample(way)
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.rounds):
        for name, way in ways.items():
            times[name].append(sample(way))
    baseline = statistics.median(times["nn.LSTM steps"])
    improved = statistics.median(times["sampling decoder"])
    ratio = improved / baseline
    passed = ratio <= TARGET_RATIO
    for name, taken in times.items():
        print(f"  {name:<17} {statistics.median(taken):7.2f} ms per {NEW_TOKENS} tokens (median)")
    print(f"ratio sampling decoder / nn.LSTM steps: {ratio:.2f}  ({machine_load()})")
    print(
        f"RESULT sampling_ratio={ratio:.2f} target<={TARGET_RATIO} {'PASS' if passed else 'FAIL'}"
    )
    print_summary(BENCHMARK, "100 tokens ms ratio", f"{ratio:.2f}", f"<= {TARGET_RATIO}", passed)


if __name__ == "__main__":
    main()
