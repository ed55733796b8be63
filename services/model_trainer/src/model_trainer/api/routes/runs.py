"""`GET /v1/runs` and `GET /v1/runs/{run_id}`: trained models, read from their manifests."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from typing_extensions import TypedDict

from model_trainer.api import ApiContext
from model_trainer.api.routes import ERROR_RESPONSES
from model_trainer.api.submit import owned_manifest
from model_trainer.storage.api_keys import Principal
from model_trainer.storage.owners import may_use
from model_trainer.storage.runs import RunSummary, list_runs


class RunListBody(TypedDict):
    runs: list[RunSummary]


def build_runs_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["runs"], responses=ERROR_RESPONSES)

    key = Depends(ctx["caller"])

    @router.get("/v1/runs", response_model=RunListBody)
    def get_runs(caller: Principal = key) -> RunListBody:
        """The caller's finished runs (every run for an admin)."""
        runs = list_runs(ctx["settings"])
        visible = may_use(ctx["redis"], "run", [run["run_id"] for run in runs], caller)
        return {"runs": [run for run, shown in zip(runs, visible, strict=True) if shown]}

    @router.get("/v1/runs/{run_id}", description="The run's manifest.json as stored.")
    def get_run(run_id: str, caller: Principal = key) -> JSONResponse:
        return JSONResponse(owned_manifest(ctx, caller, run_id))

    return router
