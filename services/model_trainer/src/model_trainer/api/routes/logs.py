"""`GET /v1/jobs/{job_id}/logs`: the job's newest log lines from its worker, oldest first.

Workers keep each job's INFO-and-above log records (how it started, with its config; warnings;
how it ended) in Redis beside its events (`platform_workers.job_logs`); this reads them back.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from typing_extensions import TypedDict

from model_trainer.api import ApiContext
from model_trainer.api.openapi import refusals
from model_trainer.api.routes.jobs import owned_job
from model_trainer.api.schemas import JobId
from model_trainer.contracts.jobs import DOMAIN
from model_trainer.contracts.limits import DEFAULT_LOG_TAIL, MAX_LOG_TAIL
from model_trainer.storage.api_keys import Principal
from platform_core.job_logs import JobLogLine
from platform_workers.job_logs import read_job_logs


class JobLogsBody(TypedDict):
    """A job's newest log lines from its worker, oldest first."""

    job_id: str
    lines: list[JobLogLine]
    total_lines: int  # how many lines the job keeps, of which `lines` are the newest


def build_logs_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["jobs"])
    key = Depends(ctx["caller"])

    @router.get(
        "/v1/jobs/{job_id}/logs", response_model=JobLogsBody, responses=refusals("JOB_NOT_FOUND")
    )
    def get_job_logs(
        job_id: JobId,
        tail: Annotated[
            int, Query(ge=1, le=MAX_LOG_TAIL, description="the newest N lines", examples=[50])
        ] = DEFAULT_LOG_TAIL,
        caller: Principal = key,
    ) -> JobLogsBody:
        """The job's log lines from its worker, oldest first. The caller's job only (any job
        for an admin): another user's is JOB_NOT_FOUND."""
        owned_job(ctx, caller, job_id)
        lines, total = read_job_logs(ctx["redis"], DOMAIN, job_id, tail=tail)
        return {"job_id": job_id, "lines": lines, "total_lines": total}

    return router
