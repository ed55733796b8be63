"""`GET /v1/runs` and `GET /v1/runs/{run_id}`: trained models, read from their manifests."""

from __future__ import annotations

from typing import TypedDict

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from model_trainer.api import ApiContext
from model_trainer.api.routes import ERROR_RESPONSES
from model_trainer.api.schemas import RunList
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.runs import MANIFEST_FILE, run_dir
from platform_core.json_types import (
    JSONObject,
    PayloadError,
    load_json_object,
    optional_float,
    require_float,
    require_int,
    require_object,
    require_str,
)


class RunSummary(TypedDict):
    run_id: str
    model_family: str
    model_size: str
    num_params: int
    device: str
    corpus_sha256: str
    loss: float
    val_loss: float | None
    created_at: str
    completed_at: str


class RunListBody(TypedDict):
    runs: list[RunSummary]


def read_manifest(settings: Settings, run_id: str) -> JSONObject:
    """A finished run's manifest; a run without one (unknown or still training) is not found."""
    path = run_dir(settings, run_id) / MANIFEST_FILE
    if not path.is_file():
        raise ModelTrainerError(
            "MODEL_NOT_FOUND",
            f"run {run_id} does not exist or has not finished training",
            details={"field": "run_id", "run_id": run_id},
        )
    try:
        return load_json_object(path.read_bytes())
    except PayloadError as exc:
        raise ModelTrainerError(
            "MODEL_LOAD_FAILED",
            f"manifest of run {run_id} is unreadable: {exc}",
            details={"run_id": run_id},
        ) from exc


def run_summary(manifest: JSONObject) -> RunSummary:
    metrics = require_object(manifest, "metrics")
    return {
        "run_id": require_str(manifest, "run_id"),
        "model_family": require_str(manifest, "model_family"),
        "model_size": require_str(manifest, "model_size"),
        "num_params": require_int(manifest, "num_params"),
        "device": require_str(manifest, "device"),
        "corpus_sha256": require_str(manifest, "corpus_sha256"),
        "loss": require_float(metrics, "loss"),
        "val_loss": optional_float(metrics, "val_loss"),
        "created_at": require_str(manifest, "created_at"),
        "completed_at": require_str(manifest, "completed_at"),
    }


def list_runs(settings: Settings) -> list[RunSummary]:
    """Every finished run, newest first; a manifest being written or damaged is left out."""
    summaries: list[RunSummary] = []
    for path in (settings["artifacts_root"] / "runs").glob(f"*/{MANIFEST_FILE}"):
        try:
            summaries.append(run_summary(load_json_object(path.read_bytes())))
        except PayloadError:
            continue
    return sorted(summaries, key=lambda run: (run["created_at"], run["run_id"]), reverse=True)


def build_runs_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["runs"], responses=ERROR_RESPONSES)

    @router.get("/v1/runs", response_model=RunList)
    def get_runs() -> RunListBody:
        return {"runs": list_runs(ctx["settings"])}

    @router.get("/v1/runs/{run_id}", description="The run's manifest.json as stored.")
    def get_run(run_id: str) -> JSONResponse:
        return JSONResponse(read_manifest(ctx["settings"], run_id))

    return router
