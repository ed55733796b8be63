"""Tiny trained runs exported once per test module: what the export tests look inside."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path
from typing import NamedTuple

from tests.conftest import SAMPLE_TEXT
from tests.support.backends import char_tokenizer, train_cfg, train_run

from model_trainer.backends.registry import get_backend
from model_trainer.contracts.export import ExportOutcome, make_export_config
from model_trainer.contracts.jobs import ExportJobPayload
from model_trainer.contracts.model import ModelFamily, PreparedLMModel
from model_trainer.contracts.tokenizer import TokenizerHandle
from model_trainer.settings import DEFAULT_JOB_TIMEOUT_S, DEFAULT_MAX_ACTIVE_JOBS, Settings
from model_trainer.storage.exports import bundle_path
from model_trainer.tokenizers.bpe import BPETokenizer
from model_trainer.worker.export_job import export_run

# Imports that fail in the child, so a bundle that reached for the service (or torch) breaks.
_BLOCKED = ("model_trainer", "platform_core", "platform_workers", "torch", "transformers")
# Isolated mode (-I: no PYTHON* variables, no user site, not even the script's folder on the
# path), a finder that refuses the service's packages, then the script as __main__.
_RUN_ISOLATED = f"""
import runpy, sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {_BLOCKED!r}:
            raise ImportError(f'{{name}} is not part of the bundle')
        return None
sys.meta_path.insert(0, Refuse())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
"""

# What every bundle holds (gpt2's also has model/generation_config.json).
BUNDLE_FILES = [
    "README.md",
    "SHA256SUMS",
    "inference.py",
    "manifest.json",
    "model.onnx",
    "model/config.json",
    "model/metrics.jsonl",
    "model/model.safetensors",
    "model/special_tokens_map.json",
    "model/tokenizer.json",
    "model/tokenizer_config.json",
    "model/tokenizer_meta.json",
]


class Exported(NamedTuple):
    prepared: PreparedLMModel
    outcome: ExportOutcome
    run: Path  # the run directory it was exported from
    bundle: Path  # the tar.gz
    top: Path  # its extracted top directory


def module_settings(root: Path) -> Settings:
    for name in ("data", "artifacts"):
        (root / name).mkdir()
    (root / "data" / "corpus.txt").write_text(SAMPLE_TEXT, encoding="utf-8")
    return {
        "redis_url": "redis://127.0.0.1:6379/0",
        "artifacts_root": root / "artifacts",
        "artifacts_s3": None,
        "data_root": root / "data",
        "max_corpus_bytes": 1_000_000,
        "job_timeout_s": dict(DEFAULT_JOB_TIMEOUT_S),
        "max_tokens_per_step": 1 << 20,
        "max_text_bytes": 1 << 20,
        "max_request_bytes": 4 << 20,
        "max_active_jobs": dict(DEFAULT_MAX_ACTIVE_JOBS),
        "max_user_corpus_bytes": 10_000_000,
        "max_queue_depth": 10_000,
        "min_schedule_interval_s": 60,
        "max_schedules_per_user": 100,
        "log_level": "INFO",
        "metrics_token": None,
        "worker_device": "auto",
        "distributed": {"max_processes": 8, "timeout_s": 60, "nnodes": 1, "rdzv_endpoint": None},
    }


def bpe_tokenizer() -> BPETokenizer:
    return BPETokenizer.train(SAMPLE_TEXT, "bpe-test", vocab_size=300)


def export_tiny(
    settings: Settings, family: ModelFamily, job_id: str, tokenizer: TokenizerHandle | None = None
) -> Exported:
    """Train `family` tiny for a few steps into run `{family}-{tokenizer kind}`, export it as
    job `job_id` and extract the bundle beside it."""
    handle = char_tokenizer() if tokenizer is None else tokenizer
    run_id = f"{family}-{handle.kind}"
    corpus = settings["data_root"] / "corpus.txt"
    backend = get_backend(family)
    _, _, directory = train_run(
        backend, settings, train_cfg(family, corpus, max_steps=3), run_id, tokenizer=handle
    )
    prepared = backend.load(str(directory), settings)
    payload: ExportJobPayload = {
        "job_id": job_id,
        "user_id": 1,
        "run_id": run_id,
        "step": None,
        "config": make_export_config(),
    }
    outcome = export_run(payload, prepared, settings, lambda: False)
    bundle = bundle_path(settings, job_id)
    extracted = settings["data_root"] / job_id
    with tarfile.open(bundle) as archive:
        archive.extractall(extracted, filter="data")
    return Exported(prepared, outcome, directory, bundle, extracted / run_id)


def run_isolated(
    top: Path, *args: str, script: str = "inference.py"
) -> subprocess.CompletedProcess[str]:
    """`python -I inference.py ARGS` in the bundle's directory, the service unimportable."""
    return subprocess.run(
        [sys.executable, "-I", "-c", _RUN_ISOLATED, script, *args],
        cwd=top,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "", "OMP_NUM_THREADS": "1"},
        timeout=120,
    )
