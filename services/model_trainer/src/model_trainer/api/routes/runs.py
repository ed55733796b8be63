"""Runs: listing (filtered and sorted by a metric), manifests, metrics history, checkpoints and
a side-by-side comparison. Everything is read from the run directories, so it survives any
restart; history and checkpoints are readable while the run still trains."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from typing_extensions import TypedDict

from model_trainer.api import ApiContext
from model_trainer.api.openapi import refusals
from model_trainer.api.schemas import EXAMPLE_RUN_ID, RunId
from model_trainer.api.submit import owned_manifest
from model_trainer.contracts import limits as L
from model_trainer.contracts.model import ModelFamily
from model_trainer.errors import ModelTrainerError
from model_trainer.storage.api_keys import Principal
from model_trainer.storage.checkpoints import CheckpointInfo
from model_trainer.storage.owners import may_use, owns
from model_trainer.storage.run_compare import (
    RunComparison,
    compared_run,
    config_differences,
)
from model_trainer.storage.run_metrics import (
    MetricsPage,
    downsample,
    page,
    read_points,
)
from model_trainer.storage.run_store import fetch_history, run_stored, stored_checkpoints
from model_trainer.storage.runs import (
    RunManifest,
    RunSummary,
    run_dir,
    unreadable_manifest,
)
from model_trainer.storage.runs import list_runs as stored_runs
from platform_core.json_types import require_object

FilterMetric = Literal["loss", "val_loss", "best_val_loss", "steps", "elapsed_s", "num_params"]
RunMetric = Literal[FilterMetric, "created_at"]


class RunListBody(TypedDict):
    """Finished runs, in the order asked for."""

    runs: list[RunSummary]


class CheckpointListBody(TypedDict):
    """The checkpoints a run keeps, oldest first."""

    run_id: str
    checkpoints: list[CheckpointInfo]


def build_runs_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["runs"])

    key = Depends(ctx["caller"])

    @router.get("/v1/runs", response_model=RunListBody, responses=refusals())
    def list_runs(
        *,
        model_family: Annotated[
            ModelFamily | None, Query(description="only runs of this family", examples=["gpt2"])
        ] = None,
        sort: Annotated[
            RunMetric, Query(description="the metric to order by", examples=["val_loss"])
        ] = "created_at",
        order: Annotated[
            Literal["asc", "desc"] | None,
            Query(description="default: desc for created_at, asc for the others", examples=["asc"]),
        ] = None,
        metric: Annotated[
            FilterMetric | None,
            Query(description="keep the runs with this metric in [min, max]", examples=["steps"]),
        ] = None,
        min_value: Annotated[
            float | None,
            Query(alias="min", allow_inf_nan=False, description="with metric", examples=[1000]),
        ] = None,
        max_value: Annotated[
            float | None,
            Query(alias="max", allow_inf_nan=False, description="with metric", examples=[1.8]),
        ] = None,
        limit: Annotated[
            int, Query(ge=1, le=L.MAX_LISTED_RUNS, description="runs at most", examples=[20])
        ] = L.MAX_LISTED_RUNS,
        caller: Principal = key,
    ) -> RunListBody:
        """The caller's finished runs (every run for an admin); runs without the sorted metric
        (no validation split) come last, and a filter leaves them out."""
        runs = stored_runs(ctx["settings"])
        visible = may_use(ctx["redis"], "run", [run["run_id"] for run in runs], caller)
        chosen = [
            run
            for run, shown in zip(runs, visible, strict=True)
            if shown and (model_family is None or run["model_family"] == model_family)
        ]
        if metric is not None:
            chosen = [run for run in chosen if _within(run[metric], min_value, max_value)]
        descending = (sort == "created_at") if order is None else order == "desc"
        present = [run for run in chosen if run[sort] is not None]
        missing = [run for run in chosen if run[sort] is None]
        present.sort(key=lambda run: (run[sort], run["run_id"]), reverse=descending)
        return {"runs": (present + missing)[:limit]}

    @router.get(
        "/v1/runs/compare",
        response_model=RunComparison,
        responses=refusals("MODEL_NOT_FOUND", "MODEL_LOAD_FAILED", "ARTIFACT_CORRUPT"),
    )
    def compare_runs(
        *,
        ids: Annotated[
            str,
            Query(
                max_length=L.MAX_COMPARED_RUNS * (L.MAX_ID_CHARS + 1),
                description=f"2 to {L.MAX_COMPARED_RUNS} run ids, comma-separated",
                examples=[f"{EXAMPLE_RUN_ID},run-nightly-2"],
            ),
        ],
        caller: Principal = key,
    ) -> RunComparison:
        """Runs side by side: the config keys that differ, each run's final and best figures."""
        run_ids = list(dict.fromkeys(part.strip() for part in ids.split(",") if part.strip()))
        if not 2 <= len(run_ids) <= L.MAX_COMPARED_RUNS:
            raise ModelTrainerError(
                "INVALID_CONFIG",
                f"ids must name 2 to {L.MAX_COMPARED_RUNS} distinct runs, got {len(run_ids)}",
                details={"field": "ids"},
            )
        compared, configs = [], {}
        for run_id in run_ids:
            manifest = owned_manifest(ctx, caller, run_id)
            history = read_points(fetch_history(ctx["settings"], run_id))
            with unreadable_manifest(run_id):
                compared.append(compared_run(manifest, history))
                configs[run_id] = require_object(manifest, "config")
        return {"runs": compared, "config_differences": config_differences(configs)}

    @router.get(
        "/v1/runs/{run_id}",
        response_class=JSONResponse,
        responses={
            200: {"model": RunManifest, "description": "the run's manifest.json as stored"},
            **refusals("MODEL_NOT_FOUND", "MODEL_LOAD_FAILED"),
        },
    )
    def get_run(run_id: RunId, caller: Principal = key) -> JSONResponse:
        """A finished run's manifest: config, metrics, corpus, library versions, artifacts.
        Sent as stored, so a manifest written by an older version keeps its own fields."""
        return JSONResponse(owned_manifest(ctx, caller, run_id))

    @router.get(
        "/v1/runs/{run_id}/metrics",
        response_model=MetricsPage,
        responses=refusals("MODEL_NOT_FOUND", "ARTIFACT_CORRUPT"),
    )
    def get_run_metrics(
        run_id: RunId,
        *,
        offset: Annotated[
            int,
            Query(
                ge=0,
                le=L.MAX_STEPS,
                description="points to skip (the previous page's `next_offset`)",
                examples=[1000],
            ),
        ] = 0,
        limit: Annotated[
            int, Query(ge=1, le=L.MAX_METRIC_POINTS, description="points per page", examples=[500])
        ] = L.DEFAULT_METRIC_POINTS,
        points: Annotated[
            int | None,
            Query(
                ge=2,
                le=L.MAX_METRIC_POINTS,
                description="down-sample the whole history to at most this many points "
                "(bucket means) instead of paging",
                examples=[200],
            ),
        ] = None,
        caller: Principal = key,
    ) -> MetricsPage:
        """The run's step-by-step metrics, during training and after it."""
        history = read_points(fetch_history(ctx["settings"], _owned_run(ctx, caller, run_id)))
        if points is not None:
            return page(run_id, downsample(history, points), 0, points)
        return page(run_id, history, offset, limit)

    @router.get(
        "/v1/runs/{run_id}/checkpoints",
        response_model=CheckpointListBody,
        responses=refusals("MODEL_NOT_FOUND", "ARTIFACT_CORRUPT"),
    )
    def list_run_checkpoints(run_id: RunId, caller: Principal = key) -> CheckpointListBody:
        """The checkpoints the run keeps (retention: the newest and the best), oldest first;
        eval, score and generate take any of their steps."""
        checkpoints = stored_checkpoints(ctx["settings"], _owned_run(ctx, caller, run_id))
        return {"run_id": run_id, "checkpoints": checkpoints}

    return router


def _within(value: float | None, low: float | None, high: float | None) -> bool:
    if value is None:
        return False
    return (low is None or value >= low) and (high is None or value <= high)


def _owned_run(ctx: ApiContext, caller: Principal, run_id: str) -> str:
    """The caller's run, finished or still training; another user's is unknown."""
    run_dir(ctx["settings"], run_id)  # the id's own check comes first
    if not owns(ctx["redis"], "run", run_id, caller) or not run_stored(ctx["settings"], run_id):
        raise ModelTrainerError(
            "MODEL_NOT_FOUND",
            f"run {run_id} does not exist",
            details={"field": "run_id", "run_id": run_id},
        )
    return run_id
