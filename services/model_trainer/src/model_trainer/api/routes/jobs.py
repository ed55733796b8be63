"""`/v1/jobs`: submit, read, list and cancel jobs; every job belongs to the caller's user id."""

from __future__ import annotations

import asyncio
from contextlib import suppress
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Response
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer
from typing_extensions import TypedDict

from model_trainer.api import ApiContext
from model_trainer.api.auth import CachedCaller, cached_key_checker
from model_trainer.api.openapi import FILE_READ, RUN_READ, SUBMISSION, refusals
from model_trainer.api.schemas import (
    EXAMPLE_CURSOR,
    AdminUserId,
    EvalJobRequest,
    GenerateJobRequest,
    JobId,
    ScoreJobRequest,
    TokenizerJobRequest,
    TrainJobRequest,
    WaitS,
)
from model_trainer.api.submit import (
    SubmittedJob,
    plan_eval,
    plan_generate,
    plan_score,
    submit_run_job_async,
    submit_tokenizer,
    submit_train_async,
)
from model_trainer.contracts.jobs import DOMAIN, TERMINAL_STATUSES, JobRecord, JobStatus, JobType
from model_trainer.errors import QUOTE_LIMIT, ModelTrainerError, ModelTrainerErrorCode, quoted
from model_trainer.storage.api_keys import Principal, key_proof
from model_trainer.storage.runs import utc_now
from platform_workers.job_context import JobContext

CANCELLED_MESSAGE = "cancelled by the user before it started"
# Besides a submission's own refusals: a train job names a family, size, tokenizer and maybe a
# run to continue; score and generate read a text file only.
TRAIN_REFUSALS: tuple[ModelTrainerErrorCode, ...] = (
    *RUN_READ,
    *FILE_READ,
    "UNKNOWN_MODEL_FAMILY",
    "INVALID_MODEL_SIZE",
    "TOKENIZER_NOT_FOUND",
    "MODEL_INCOMPATIBLE",
)
TEXT_FILE_READ: tuple[ModelTrainerErrorCode, ...] = (
    "CORPUS_NOT_FOUND",
    "PATH_OUTSIDE_ROOT",
    "INVALID_PATH",
)


class JobListBody(TypedDict):
    """A page of your jobs, newest first; pass `next_cursor` as `cursor` for the next."""

    jobs: list[JobRecord]
    next_cursor: str | None


def owned_job(ctx: ApiContext, caller: Principal, job_id: str) -> JobRecord:
    """The caller's job (any job for an admin); another user's job is as invisible as one that
    never existed."""
    return visible(ctx["jobs"].get(job_id), caller, job_id)


def visible(record: JobRecord | None, caller: Principal, job_id: str) -> JobRecord:
    if record is None or not (caller["admin"] or record["user_id"] == caller["user_id"]):
        raise ModelTrainerError(
            "JOB_NOT_FOUND",
            f"job {quoted(job_id)} does not exist",
            details={"job_id": job_id[:QUOTE_LIMIT]},
        )
    return record


async def ended_or_waited(
    ctx: ApiContext, caller: Principal, job_id: str, wait_s: float
) -> JobRecord:
    """The record once the job ended, or as it stands after `wait_s` (or once the API begins
    shutting down). The hub wakes the wait at each of the job's events; the watch starts before
    the first read, so an end between the two is never missed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    with ctx["events"].watch(job_id) as wake:
        record = visible(await ctx["jobs"].get_async(ctx["batch"], job_id), caller, job_id)
        while record["status"] not in TERMINAL_STATUSES and not ctx["events"].closed:
            left = deadline - loop.time()
            if left <= 0:
                break
            with suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), left)
            wake.clear()
            record = visible(await ctx["jobs"].get_async(ctx["batch"], job_id), caller, job_id)
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


def accepted(job: SubmittedJob) -> Response:
    """The 202 body, encoded once: the hot submit route skips re-validating what it built."""
    return Response(orjson.dumps(job), status_code=202, media_type="application/json")


def build_jobs_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["jobs"])
    key = Depends(ctx["caller"])
    known: dict[str, Principal] = {}
    cached = Depends(cached_key_checker(ctx["batch"], known))

    @router.post(
        "/v1/jobs/train",
        status_code=202,
        response_model=SubmittedJob,
        responses=refusals(*SUBMISSION, *TRAIN_REFUSALS, "NO_CUDA_WORKER"),
    )
    async def submit_train_job(body: TrainJobRequest, caller: CachedCaller = cached) -> Response:
        """Train a model from scratch (or continue or fine-tune one) on a corpus."""
        principal = caller["principal"]
        proof = key_proof(principal, caller["key"])
        try:
            job = await submit_train_async(ctx, ctx["batch"], principal, body, proof)
        except ModelTrainerError as refusal:
            if refusal.code == "UNAUTHENTICATED":  # revoked since this process cached it
                known.pop(caller["key"], None)
            raise
        return accepted(job)

    @router.post(
        "/v1/jobs/eval",
        status_code=202,
        response_model=SubmittedJob,
        responses=refusals(*SUBMISSION, *RUN_READ, *FILE_READ),
    )
    async def submit_eval_job(body: EvalJobRequest, caller: Principal = key) -> Response:
        """Measure a trained model's loss on a corpus."""
        return accepted(await submit_run_job_async(ctx, ctx["batch"], caller, body, plan_eval))

    @router.post(
        "/v1/jobs/score",
        status_code=202,
        response_model=SubmittedJob,
        responses=refusals(*SUBMISSION, *RUN_READ, *TEXT_FILE_READ),
    )
    async def submit_score_job(body: ScoreJobRequest, caller: Principal = key) -> Response:
        """Score a text token by token with a trained model."""
        return accepted(await submit_run_job_async(ctx, ctx["batch"], caller, body, plan_score))

    @router.post(
        "/v1/jobs/generate",
        status_code=202,
        response_model=SubmittedJob,
        responses=refusals(*SUBMISSION, *RUN_READ, *TEXT_FILE_READ),
    )
    async def submit_generate_job(body: GenerateJobRequest, caller: Principal = key) -> Response:
        """Sample continuations of a prompt from a trained model."""
        return accepted(await submit_run_job_async(ctx, ctx["batch"], caller, body, plan_generate))

    @router.post(
        "/v1/jobs/tokenizer",
        status_code=202,
        response_model=SubmittedJob,
        responses=refusals(*SUBMISSION, *FILE_READ),
    )
    def submit_tokenizer_job(body: TokenizerJobRequest, caller: Principal = key) -> SubmittedJob:
        """Train a tokenizer on a corpus."""
        return submit_tokenizer(ctx, caller, body)

    @router.get("/v1/jobs", response_model=JobListBody, responses=refusals())
    def list_jobs(
        *,
        status: Annotated[
            JobStatus | None,
            Query(description="only jobs in this status", examples=["running"]),
        ] = None,
        job_type: Annotated[
            JobType | None,
            Query(alias="type", description="only jobs of this type", examples=["train"]),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=200, description="jobs per page", examples=[20])] = 50,
        cursor: Annotated[
            str | None,
            Query(
                max_length=200,
                description="the `next_cursor` of the previous page",
                examples=[EXAMPLE_CURSOR],
            ),
        ] = None,
        user_id: AdminUserId = None,
        caller: Principal = key,
    ) -> JobListBody:
        """Your jobs, newest first, a page at a time (`next_cursor` asks for the next)."""
        jobs, next_cursor = ctx["jobs"].list_for_user(
            listed_user(caller, user_id),
            status=status,
            job_type=job_type,
            limit=limit,
            cursor=cursor,
        )
        return {"jobs": jobs, "next_cursor": next_cursor}

    @router.get("/v1/jobs/{job_id}", response_model=JobRecord, responses=refusals("JOB_NOT_FOUND"))
    async def get_job(job_id: JobId, caller: Principal = key, wait_s: WaitS = 0.0) -> JobRecord:
        """The job's record: status, progress, attempts, times, result or error. With `wait_s`,
        an unfinished job's record is held back until the job ends or `wait_s` pass (long
        polling: a client learns the end the moment it comes, without polling)."""
        return await ended_or_waited(ctx, caller, job_id, wait_s)

    @router.delete(
        "/v1/jobs/{job_id}",
        response_model=JobRecord,
        responses={
            202: {"model": JobRecord, "description": "running: it stops at its next step"},
            **refusals("JOB_NOT_FOUND", "JOB_ALREADY_FINISHED"),
        },
    )
    def cancel_job(job_id: JobId, response: Response, caller: Principal = key) -> JobRecord:
        """Cancel the job: a queued one at once (200), a running one at its next step (202)."""
        record = owned_job(ctx, caller, job_id)
        if record["status"] in TERMINAL_STATUSES:
            raise ModelTrainerError(
                "JOB_ALREADY_FINISHED",
                f"job {job_id} already ended as {record['status']}",
                details={"job_id": job_id, "status": record["status"]},
            )
        cancel(ctx, record)
        if record["status"] == "running":
            response.status_code = 202
        return owned_job(ctx, caller, job_id)

    return router


def cancel(ctx: ApiContext, record: JobRecord) -> None:
    """Cancel an unended job: a queued one at once, a running one at its next step."""
    # Set the flag first: a worker that picks the job up right now still sees it.
    ctx["jobs"].request_cancel(record["job_id"])
    if record["status"] != "running":
        cancel_queued(ctx, record)


def listed_user(caller: Principal, user_id: int | None) -> int:
    """Whose jobs (or model registry) a read shows: the caller's, or for an admin whoever
    they name."""
    if user_id is None or user_id == caller["user_id"]:
        return caller["user_id"]
    if not caller["admin"]:
        raise ModelTrainerError(
            "INVALID_CONFIG",
            "user_id names another user and needs an admin key; omit it for your own",
            details={"field": "user_id"},
        )
    return user_id
