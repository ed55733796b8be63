"""Export jobs: submit one for a finished run, then download its bundle once it completed."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from fastapi.responses import FileResponse

from model_trainer.api import ApiContext
from model_trainer.api.openapi import RUN_READ, SUBMISSION, refusals
from model_trainer.api.routes.jobs import accepted, owned_job
from model_trainer.api.schemas import ExportJobRequest, JobId
from model_trainer.api.submit import SubmittedJob, plan_export, submit_run_job_async
from model_trainer.contracts.export import BUNDLE_SHA256_HEADER
from model_trainer.contracts.jobs import JobRecord
from model_trainer.errors import ModelTrainerError
from model_trainer.storage.api_keys import Principal
from model_trainer.storage.digests import corrupt_artifact
from model_trainer.storage.exports import BUNDLE_MEDIA_TYPE, BUNDLE_SUFFIX, bundle_path
from platform_core.json_types import PayloadError, require_int, require_str


def build_exports_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["exports"])
    key = Depends(ctx["caller"])

    @router.post(
        "/v1/jobs/export",
        status_code=202,
        response_model=SubmittedJob,
        responses=refusals(*SUBMISSION, *RUN_READ),
    )
    async def submit_export_job(body: ExportJobRequest, caller: Principal = key) -> Response:
        """Export a finished run (or checkpoint, or model version) as a .tar.gz bundle."""
        return accepted(await submit_run_job_async(ctx, ctx["batch"], caller, body, plan_export))

    @router.get(
        "/v1/jobs/{job_id}/bundle",
        response_class=FileResponse,
        responses={
            200: {
                "content": {BUNDLE_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
                "description": f"the .tar.gz; its sha256 in {BUNDLE_SHA256_HEADER}",
            },
            **refusals("JOB_NOT_FOUND", "JOB_NOT_COMPLETED", "ARTIFACT_CORRUPT"),
        },
    )
    def download_export_bundle(job_id: JobId, caller: Principal = key) -> FileResponse:
        """The caller's completed export job's bundle, streamed from disk."""
        record = completed_export(owned_job(ctx, caller, job_id))
        path = bundle_path(ctx["settings"], job_id)
        sha256, size, run_id = _bundle_facts(record)
        if not path.is_file() or path.stat().st_size != size:
            raise corrupt_artifact(path.parent, path.name, "is missing or not the bundle recorded")
        return FileResponse(
            path,
            media_type=BUNDLE_MEDIA_TYPE,
            filename=f"{run_id}-{job_id}{BUNDLE_SUFFIX}",
            headers={BUNDLE_SHA256_HEADER: sha256},
        )

    return router


def completed_export(record: JobRecord) -> JobRecord:
    """Only an export job has a bundle (another type is as unknown as a missing job), and only
    once it completed."""
    job_id = record["job_id"]
    if record["type"] != "export":
        raise ModelTrainerError(
            "JOB_NOT_FOUND", f"job {job_id} is not an export job", details={"job_id": job_id}
        )
    if record["status"] != "completed":
        raise ModelTrainerError(
            "JOB_NOT_COMPLETED",
            f"export job {job_id} is {record['status']}; its bundle exists once it completed",
            details={"job_id": job_id, "status": record["status"]},
        )
    return record


def _bundle_facts(record: JobRecord) -> tuple[str, int, str]:
    """sha256, size and run of the bundle, from the job's result (ExportOutcome)."""
    result = record["result"] or {}
    try:
        return (
            require_str(result, "sha256"),
            require_int(result, "bundle_bytes"),
            require_str(result, "run_id"),
        )
    except PayloadError as exc:
        raise ModelTrainerError(
            "INTERNAL_ERROR", f"export job {record['job_id']} has an unreadable result: {exc}"
        ) from exc
