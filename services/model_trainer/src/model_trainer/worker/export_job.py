"""process_export_job: a finished run as a downloadable bundle (HF files, ONNX, inference.py)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from model_trainer.contracts.export import ExportOutcome
from model_trainer.contracts.jobs import ExportJobPayload
from model_trainer.contracts.model import PreparedLMModel, StopCheck
from model_trainer.export.bundle import assemble, pack
from model_trainer.settings import Settings
from model_trainer.storage.digests import file_sha256
from model_trainer.storage.exports import exports_dir, store_bundle
from model_trainer.storage.runs import run_dir
from model_trainer.training.evaluation import stop_if_asked
from model_trainer.worker.job_utils import connect, run_inference_job
from platform_core.json_types import JSONObject
from platform_workers.redis_conn import RedisClient


def process_export_job(payload: ExportJobPayload) -> JSONObject:
    """RQ entry point on the `train` queue (enqueued by dotted path)."""
    settings, redis = connect()
    return run_export_job(payload, settings=settings, redis=redis)


def run_export_job(
    payload: ExportJobPayload, *, settings: Settings, redis: RedisClient
) -> JSONObject:
    """The run is loaded (and its files verified) by the backend, as for inference."""
    return run_inference_job(
        payload,
        "export",
        lambda backend, prepared, should_stop: export_run(
            payload,
            prepared,
            settings,
            should_stop,
            save_weights=(
                None if payload["step"] is None else lambda out: backend.save(prepared, str(out))
            ),
        ),
        settings=settings,
        redis=redis,
    )


def export_run(
    payload: ExportJobPayload,
    prepared: PreparedLMModel,
    settings: Settings,
    should_stop: StopCheck,
    *,
    save_weights: Callable[[Path], object] | None = None,
) -> ExportOutcome:
    """Assemble the bundle in a scratch directory beside the exports, then store it whole; a
    cancel between the export and the store leaves nothing behind."""
    run_id, job_id = payload["run_id"], payload["job_id"]
    scratch_root = exports_dir(settings)
    scratch_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch_root, prefix=".export-") as scratch:
        opset = payload["config"]["onnx_opset"]
        top, files = assemble(
            prepared,
            run_dir(settings, run_id),
            Path(scratch),
            opset=opset,
            save_weights=save_weights,
        )
        stop_if_asked(should_stop, f"export of run {run_id} cancelled before it was stored")
        bundle = store_bundle(settings, job_id, lambda out: pack(top, out))
    return {
        "run_id": run_id,
        "bundle_bytes": bundle.stat().st_size,
        "sha256": file_sha256(bundle),
        "files": files,
    }
