"""`/v1/jobs`: submit, read, list and cancel jobs; every job belongs to the caller's user id."""

from __future__ import annotations

from contextlib import suppress
from typing import Annotated

from fastapi import APIRouter, Query, Response
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer
from typing_extensions import TypedDict

from model_trainer.api import ApiContext
from model_trainer.api.routes import ERROR_RESPONSES
from model_trainer.api.schemas import (
    EvalJobRequest,
    GenerateJobRequest,
    ScoreJobRequest,
    TokenizerJobRequest,
    TrainJobRequest,
)
from model_trainer.api.submit import (
    SubmittedJob,
    submit_eval,
    submit_generate,
    submit_score,
    submit_tokenizer,
    submit_train,
)
from model_trainer.contracts.jobs import DOMAIN, TERMINAL_STATUSES, JobRecord, JobStatus, JobType
from model_trainer.errors import ModelTrainerError
from model_trainer.storage.runs import utc_now
from platform_workers.job_context import JobContext

CANCELLED_MESSAGE = "cancelled by the user before it started"


class JobListBody(TypedDict):
    jobs: list[JobRecord]
    next_cursor: str | None


def owned_job(ctx: ApiContext, job_id: str) -> JobRecord:
    """The caller's job; another user's job is as invisible as one that never existed."""
    record = ctx["jobs"].get(job_id)
    if record is None or record["user_id"] != ctx["settings"]["default_user_id"]:
        raise ModelTrainerError(
            "JOB_NOT_FOUND", f"job {job_id} does not exist", details={"job_id": job_id}
        )
    return record


def cancel_queued(ctx: ApiContext, record: JobRecord) -> None:
    """Take the job off its RQ queue, mark it cancelled and tell event followers it ended."""
    job_id = record["job_id"]
    # Expired or already cancelled in RQ: our record still has to say so.
    with suppress(NoSuchJobError, InvalidJobOperation):
        Job.fetch(job_id, connection=ctx["redis"], serializer=JSONSerializer).cancel()
    ctx["jobs"].fail(
        job_id,
        error={"code": "TRAINING_CANCELLED", "kind": "user", "message": CANCELLED_MESSAGE},
        status="cancelled",
        now=utc_now(),
    )
    context = JobContext(
        ctx["redis"],
        domain=DOMAIN,
        job_id=job_id,
        user_id=record["user_id"],
        queue=record["queue"],
    )
    context.publish_failed("user", "TRAINING_CANCELLED", CANCELLED_MESSAGE)


def build_jobs_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["jobs"], responses=ERROR_RESPONSES)

    @router.post("/v1/jobs/train", status_code=202, response_model=SubmittedJob)
    def post_train(body: TrainJobRequest) -> SubmittedJob:
        return submit_train(ctx, body)

    @router.post("/v1/jobs/eval", status_code=202, response_model=SubmittedJob)
    def post_eval(body: EvalJobRequest) -> SubmittedJob:
        return submit_eval(ctx, body)

    @router.post("/v1/jobs/score", status_code=202, response_model=SubmittedJob)
    def post_score(body: ScoreJobRequest) -> SubmittedJob:
        return submit_score(ctx, body)

    @router.post("/v1/jobs/generate", status_code=202, response_model=SubmittedJob)
    def post_generate(body: GenerateJobRequest) -> SubmittedJob:
        return submit_generate(ctx, body)

    @router.post("/v1/jobs/tokenizer", status_code=202, response_model=SubmittedJob)
    def post_tokenizer(body: TokenizerJobRequest) -> SubmittedJob:
        return submit_tokenizer(ctx, body)

    @router.get("/v1/jobs", response_model=JobListBody)
    def list_jobs(
        status: JobStatus | None = None,
        job_type: Annotated[JobType | None, Query(alias="type")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: str | None = None,
    ) -> JobListBody:
        jobs, next_cursor = ctx["jobs"].list_for_user(
            ctx["settings"]["default_user_id"],
            status=status,
            job_type=job_type,
            limit=limit,
            cursor=cursor,
        )
        return {"jobs": jobs, "next_cursor": next_cursor}

    @router.get("/v1/jobs/{job_id}", response_model=JobRecord)
    def get_job(job_id: str) -> JobRecord:
        return owned_job(ctx, job_id)

    @router.delete(
        "/v1/jobs/{job_id}",
        response_model=JobRecord,
        responses={202: {"model": JobRecord, "description": "running: it stops at its next step"}},
    )
    def delete_job(job_id: str, response: Response) -> JobRecord:
        record = owned_job(ctx, job_id)
        if record["status"] in TERMINAL_STATUSES:
            raise ModelTrainerError(
                "JOB_ALREADY_FINISHED",
                f"job {job_id} already ended as {record['status']}",
                details={"job_id": job_id, "status": record["status"]},
            )
        # Set the flag first: a worker that picks the job up right now still sees it.
        ctx["jobs"].request_cancel(job_id)
        if record["status"] == "running":
            response.status_code = 202
        else:
            cancel_queued(ctx, record)
        return owned_job(ctx, job_id)

    return router
