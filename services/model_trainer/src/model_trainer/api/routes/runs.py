"""`GET /v1/runs` and `GET /v1/runs/{run_id}`: trained models, read from their manifests."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from typing_extensions import TypedDict

from model_trainer.api import ApiContext
from model_trainer.api.routes import ERROR_RESPONSES
from model_trainer.storage.runs import RunSummary, list_runs, read_manifest


class RunListBody(TypedDict):
    runs: list[RunSummary]


def build_runs_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["runs"], responses=ERROR_RESPONSES)

    @router.get("/v1/runs", response_model=RunListBody)
    def get_runs() -> RunListBody:
        return {"runs": list_runs(ctx["settings"])}

    @router.get("/v1/runs/{run_id}", description="The run's manifest.json as stored.")
    def get_run(run_id: str) -> JSONResponse:
        return JSONResponse(read_manifest(ctx["settings"], run_id))

    return router
