"""`/v1/studies`: hyperparameter searches whose trials are the caller's ordinary train jobs.

The API only checks, records and reads: workers advance studies (they import Optuna; the API
does not), within seconds of the record appearing (see `studies/driver.py`).
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from typing_extensions import TypedDict

from model_trainer.api import ApiContext
from model_trainer.api.openapi import refusals
from model_trainer.api.routes.jobs import TRAIN_REFUSALS, cancel
from model_trainer.api.schemas import StudyRequest
from model_trainer.api.study_spec import checked_spec
from model_trainer.contracts.jobs import DOMAIN, TERMINAL_STATUSES
from model_trainer.contracts.studies import (
    TRIAL_STATES,
    StudyEnd,
    StudyError,
    StudyRecord,
    StudySpec,
    StudyStatus,
    TrialRecord,
    TrialState,
)
from model_trainer.errors import ModelTrainerError
from model_trainer.storage.api_keys import Principal
from model_trainer.storage.runs import utc_now
from model_trainer.storage.studies import StudyStore
from platform_core.json_types import JSONObject
from platform_workers.keys import study_lock_key

StudyId = Annotated[
    str,
    Path(
        pattern=r"^study-[0-9a-f]{12}$",
        description="a study's id, as its creation answered",
        examples=["study-0123456789ab"],
    ),
]
# How long a cancel waits for a study being advanced right now.
CANCEL_WAIT_S = 30.0


class BestTrial(TypedDict):
    """The complete trial with the lowest value so far."""

    number: int
    value: float
    params: JSONObject
    job_id: str
    run_id: str


class StudyBody(TypedDict):
    """A study: its status, how its trials stand, the best one, and what it searches."""

    study_id: str
    name: str
    status: StudyStatus
    ended_by: StudyEnd | None
    error: StudyError | None
    created_at: str
    finished_at: str | None
    n_trials: int
    # How many trials are in each state.
    counts: dict[TrialState, int]
    best_trial: BestTrial | None
    spec: StudySpec


class StudyListBody(TypedDict):
    """Your studies, newest first."""

    studies: list[StudyBody]


class TrialListBody(TypedDict):
    """Every trial of a study."""

    trials: list[TrialRecord]


def study_body(record: StudyRecord, trials: list[TrialRecord]) -> StudyBody:
    counts = dict.fromkeys(TRIAL_STATES, 0)
    for trial in trials:
        counts[trial["state"]] += 1
    return {
        "study_id": record["study_id"],
        "name": record["spec"]["name"],
        "status": record["status"],
        "ended_by": record["ended_by"],
        "error": record["error"],
        "created_at": record["created_at"],
        "finished_at": record["finished_at"],
        "n_trials": record["spec"]["n_trials"],
        "counts": counts,
        "best_trial": best_trial(trials),
        "spec": record["spec"],
    }


def best_trial(trials: list[TrialRecord]) -> BestTrial | None:
    """The complete trial with the lowest value (the earliest among equals)."""
    scored = [
        (trial["value"], trial)
        for trial in trials
        if trial["state"] == "complete" and trial["value"] is not None
    ]
    if not scored:
        return None
    value, trial = min(scored, key=lambda pair: (pair[0], pair[1]["number"]))
    return {
        "number": trial["number"],
        "value": value,
        "params": trial["params"],
        "job_id": trial["job_id"],
        "run_id": trial["run_id"],
    }


def study_record(caller: Principal, spec: StudySpec, timeout_s: int | None) -> StudyRecord:
    """A new running study of the caller's."""
    return {
        "study_id": f"study-{uuid.uuid4().hex[:12]}",
        "user_id": caller["user_id"],
        "user": caller["user"],
        "key_id": caller["key_id"],
        "admin": caller["admin"],
        "spec": spec,
        "status": "running",
        "ended_by": None,
        "error": None,
        "created_at": utc_now(),
        "finished_at": None,
        "deadline": None if timeout_s is None else time.time() + timeout_s,
    }


def build_studies_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["studies"])
    key = Depends(ctx["caller"])
    store = StudyStore(ctx["redis"])

    def owned(caller: Principal, study_id: str) -> StudyRecord:
        return store.require(study_id, caller["user_id"], admin=caller["admin"])

    @router.post(
        "/v1/studies",
        status_code=201,
        response_model=StudyBody,
        responses=refusals(
            "REQUEST_TOO_LARGE", "QUOTA_EXCEEDED", *TRAIN_REFUSALS, "NO_CUDA_WORKER"
        ),
    )
    def create_study(body: StudyRequest, caller: Principal = key) -> StudyBody:
        """Start tuning a train request with Optuna; every trial is a train job of yours. Its
        base request and each parameter's ends are checked as a train submission is."""
        record = study_record(caller, checked_spec(ctx, caller, body), body.timeout_s)
        store.create(record)
        return study_body(record, [])

    @router.get("/v1/studies", response_model=StudyListBody, responses=refusals())
    def list_studies(
        limit: Annotated[
            int, Query(ge=1, le=200, description="studies at most", examples=[20])
        ] = 50,
        caller: Principal = key,
    ) -> StudyListBody:
        """Your studies, newest first."""
        records = store.list_for_user(caller["user_id"], limit)
        return {
            "studies": [study_body(record, store.trials(record["study_id"])) for record in records]
        }

    @router.get(
        "/v1/studies/{study_id}", response_model=StudyBody, responses=refusals("STUDY_NOT_FOUND")
    )
    def get_study(study_id: StudyId, caller: Principal = key) -> StudyBody:
        """The study: status, trial counts per state, best trial."""
        record = owned(caller, study_id)
        return study_body(record, store.trials(study_id))

    @router.get(
        "/v1/studies/{study_id}/trials",
        response_model=TrialListBody,
        responses=refusals("STUDY_NOT_FOUND"),
    )
    def list_study_trials(study_id: StudyId, caller: Principal = key) -> TrialListBody:
        """Every trial: its parameters, state, value, job and run."""
        owned(caller, study_id)
        return {"trials": store.trials(study_id)}

    @router.delete(
        "/v1/studies/{study_id}",
        response_model=StudyBody,
        responses=refusals("STUDY_NOT_FOUND", "STUDY_ENDED"),
    )
    def cancel_study(study_id: StudyId, caller: Principal = key) -> StudyBody:
        """End the study and cancel its unfinished trials (a running one stops at its next
        step, after a checkpoint)."""
        owned(caller, study_id)
        with ctx["redis"].lock(
            study_lock_key(DOMAIN, study_id), timeout=60, blocking_timeout=CANCEL_WAIT_S
        ):
            record = owned(caller, study_id)
            if record["status"] != "running":
                raise ModelTrainerError(
                    "STUDY_ENDED",
                    f"study {study_id} already ended as {record['status']}",
                    details={"study_id": study_id, "status": record["status"]},
                )
            record = store.end(record, "cancelled", "cancelled", now=utc_now())
            for trial in store.trials(study_id):
                if trial["state"] in ("waiting", "running"):
                    _cancel_trial(ctx, store, study_id, trial)
        return study_body(record, store.trials(study_id))

    return router


def _cancel_trial(ctx: ApiContext, store: StudyStore, study_id: str, trial: TrialRecord) -> None:
    job = ctx["jobs"].get(trial["job_id"])
    if job is not None and job["status"] not in TERMINAL_STATUSES:
        cancel(ctx, job)
    store.put_trial(study_id, {**trial, "state": "cancelled", "finished_at": utc_now()})
