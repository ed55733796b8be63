"""GPT-2 `nano` through the running service, submit→completed, against the minimal reference.

`gpt2_nano` times the backend's training in-process against `bench/minimal_gpt.py`; this one
adds everything a user waits for: the HTTP submit, the record, RQ's dequeue, the spawned work
horse (a fresh interpreter importing torch), reading and tokenizing the corpus, the training,
the final validation, saving the run with its digests and the completed event. The reference
(from the same initial weights, on the same batches) runs first in this process, loop plus
final validation; then redis-server, the API and one train worker (`--device cpu`) run as
processes and the same recipe is submitted over HTTP. Target: the service's submit→completed
wall ≤ 1.05 x the reference's total, at equal validation loss (±0.01).
Run from the repository root: `python -m bench.gpt2_service [--steps 2000]`.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import torch
from bench.gpt2_nano import (
    BATCH_SIZE,
    BETA2,
    GRAD_CLIP,
    LEARNING_RATE,
    MIN_LR_RATIO,
    MODEL_SIZE,
    SEED,
    SEQ_LEN,
    STEPS,
    WARMUP_STEPS,
    WEIGHT_DECAY,
    ReferenceLoop,
    bench_settings,
    reference_model,
    train_config,
    val_windows,
)
from bench.reference import (
    CharData,
    corpus_path,
    load_char_data,
    machine_load,
    print_summary,
    synchronize,
)
from bench.service_latency import (
    CLI,
    EventTap,
    bench_key,
    ended,
    print_log_tails,
    running,
    service_env,
    start_api,
    start_redis,
    submit,
    wait_for,
)
from rq import Worker

from model_trainer.backends.gpt2 import as_gpt2
from model_trainer.backends.registry import get_backend
from model_trainer.training.data import TokenWindows
from model_trainer.training.device import resolve_device
from platform_core.json_types import JSONValue, load_json_object, require_float, require_object
from platform_workers.redis_conn import redis_from_url

BENCHMARK = "gpt2_service"
TARGET_TOTAL_RATIO = 1.05
TARGET_VAL_GAP = 0.01
TRAIN_TIMEOUT_S = 1800.0


def reference_total(workdir: Path, data: CharData, steps: int) -> tuple[float, float]:
    """The reference's wall seconds (loop + final validation) and its validation loss."""
    (workdir / "reference").mkdir()
    settings = bench_settings(workdir / "reference")
    corpus = settings["data_root"] / "tinyshakespeare.txt"
    shutil.copyfile(corpus_path(), corpus)
    held_out = val_windows(data)
    cfg = train_config(corpus, steps, held_out.batches_per_epoch)
    prepared = get_backend("gpt2").prepare(cfg, settings, tokenizer=data["tokenizer"])
    windows = TokenWindows(
        data["train_tokens"], seq_len=SEQ_LEN, batch_size=BATCH_SIZE, seed=SEED, shuffle=True
    )
    loop = ReferenceLoop(reference_model(as_gpt2(prepared["model"]).hf), windows, steps)
    device = resolve_device(cfg["device"])
    began = time.perf_counter()
    loop.run(steps)
    val_loss = loop.validate(held_out)
    synchronize(device)
    return time.perf_counter() - began, val_loss


def job_body(corpus: Path, steps: int, eval_batches: int) -> dict[str, JSONValue]:
    """gpt2_nano's recipe as a user submits it (the corpus by path under DATA_ROOT)."""
    return {
        "model_family": "gpt2",
        "model_size": MODEL_SIZE,
        "corpus_path": str(corpus),
        "max_seq_len": SEQ_LEN,
        "batch_size": BATCH_SIZE,
        "learning_rate": LEARNING_RATE,
        "beta2": BETA2,
        "seed": SEED,
        "max_steps": steps,
        "weight_decay": WEIGHT_DECAY,
        "grad_clip": GRAD_CLIP,
        "lr_schedule": "cosine",
        "warmup_steps": WARMUP_STEPS,
        "min_lr_ratio": MIN_LR_RATIO,
        "log_every_steps": 10,
        "checkpoint_every_steps": None,
        "eval_max_batches": eval_batches,
        "device": "cpu",
    }


def service_total(
    stack: ExitStack, workdir: Path, steps: int, eval_batches: int
) -> tuple[float, float]:
    """Submit→completed wall seconds of the same training through the service, and its
    validation loss (from the job's result)."""
    logs = workdir / "logs"
    logs.mkdir()
    env = service_env(workdir / "service", start_redis(stack, workdir, logs)[1])
    data_root = Path(env["DATA_ROOT"])
    data_root.mkdir(parents=True)
    corpus = data_root / "tinyshakespeare.txt"
    shutil.copyfile(corpus_path(), corpus)
    http = start_api(stack, env, logs, bench_key(env["REDIS_URL"]))[1]
    worker = [*CLI, "worker", "--queues", "train", "--device", "cpu"]
    stack.enter_context(running(worker, env, logs / "worker.log"))
    redis = redis_from_url(env["REDIS_URL"])
    stack.callback(redis.close)
    wait_for(lambda: Worker.count(connection=redis) >= 1, timeout=120, what="the worker")
    tap = EventTap(redis)
    stack.callback(tap.close)
    body = job_body(corpus, steps, eval_batches)
    began = time.perf_counter()
    job_id = submit(http, "train", body)
    ended(tap, job_id, TRAIN_TIMEOUT_S)
    took = time.perf_counter() - began
    record = load_json_object(http.get(f"/v1/jobs/{job_id}").content)
    return took, require_float(require_object(record, "result"), "val_loss")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=STEPS, help="training steps (default 2000)")
    steps = int(parser.parse_args().steps)
    torch.set_num_threads(2)
    print(f"{BENCHMARK}: {steps} steps, {machine_load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-gpt2-service-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        data = load_char_data(corpus_path())
        ref_s, ref_val = reference_total(workdir, data, steps)
        print(f"reference: {ref_s:.1f} s (loop + final validation), val {ref_val:.4f}", flush=True)
        try:
            eval_batches = val_windows(data).batches_per_epoch
            ours_s, ours_val = service_total(stack, workdir, steps, eval_batches)
        except BaseException:
            print_log_tails(workdir / "logs")
            raise
    ratio, gap = ours_s / ref_s, ours_val - ref_val
    print(f"service submit->completed: {ours_s:.1f} s, val {ours_val:.4f}; {machine_load()}")
    ratio_ok, gap_ok = ratio <= TARGET_TOTAL_RATIO, abs(gap) <= TARGET_VAL_GAP
    print(f"ratio service / reference {ratio:.4f}  target <= {TARGET_TOTAL_RATIO}")
    print(f"val loss gap {gap:+.4f}  target within {TARGET_VAL_GAP}")
    print_summary(BENCHMARK, "reference total s", f"{ref_s:.1f}", "-", None)
    print_summary(BENCHMARK, "service submit->completed s", f"{ours_s:.1f}", "-", None)
    print_summary(BENCHMARK, "submit->completed / reference", f"{ratio:.4f}", "<= 1.05", ratio_ok)
    print_summary(BENCHMARK, "val loss gap service-ref", f"{gap:+.4f}", "+-0.01", gap_ok)


if __name__ == "__main__":
    main()
