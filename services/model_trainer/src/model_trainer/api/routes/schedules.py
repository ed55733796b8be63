"""`/v1/schedules`: the caller's schedules, each submitting a job request on a cron expression
or an interval; `model-trainer scheduler` fires them (scheduler/).

A new schedule is checked as a submission of its request would be (the job type's request class,
then every check that writes nothing), so one that could never fire is refused at once. Another
user's schedule is as unknown as one that never existed; an admin reads and acts on any, as with
jobs.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from typing_extensions import TypedDict

from model_trainer.api import ApiContext
from model_trainer.api.job_requests import KEPT_REQUESTS
from model_trainer.api.openapi import refusals
from model_trainer.api.routes.jobs import TRAIN_REFUSALS, listed_user
from model_trainer.api.schemas import AdminUserId, CreateScheduleRequest
from model_trainer.contracts import limits as L
from model_trainer.contracts.jobs import JobType
from model_trainer.errors import QUOTE_LIMIT, ModelTrainerError, quoted
from model_trainer.scheduler.timing import checked_cron, checked_interval, iso, next_fire_at
from model_trainer.storage.api_keys import Principal
from model_trainer.storage.schedules import Firing, ScheduleRecord, ScheduleStore
from platform_core.json_types import dump_json_object

ScheduleId = Annotated[
    str,
    Path(
        pattern=r"^[0-9a-f]{32}$",
        description="a schedule's id, as its creation answered",
        examples=["0c9e5d2b7a6f4e3d8c1b2a3f4e5d6c7b"],
    ),
]
# A request naming what its job creates: every firing after the first would find it taken.
_CREATES: dict[JobType, str] = {"train": "run_id", "tokenizer": "tokenizer_id"}


class ScheduleView(ScheduleRecord):
    """A schedule, and when it fires next."""

    # The next slot; in the past when it is due (it fires once a scheduler runs); None paused.
    next_fire_at: str | None


class ScheduleDetail(ScheduleView):
    """A schedule with its newest firings."""

    # The newest firings, newest first.
    firings: list[Firing]


class ScheduleListBody(TypedDict):
    """Your schedules."""

    schedules: list[ScheduleView]


def view(record: ScheduleRecord) -> ScheduleView:
    return {**record, "next_fire_at": next_fire_at(record)}


def new_schedule(ctx: ApiContext, caller: Principal, body: CreateScheduleRequest) -> ScheduleRecord:
    """The record of a schedule that passed every check; refusals are INVALID_CONFIG naming the
    field, or what its request's submission would be refused with."""
    minimum = ctx["settings"]["min_schedule_interval_s"]
    if (body.cron is None) == (body.interval_s is None):
        raise _invalid("cron", "give exactly one of cron and interval_s")
    cron = None if body.cron is None else checked_cron(body.cron, minimum)
    interval = None if body.interval_s is None else checked_interval(body.interval_s, minimum)
    size = len(dump_json_object(body.request).encode())
    if size > L.MAX_SCHEDULE_REQUEST_BYTES:
        raise ModelTrainerError(
            "REQUEST_TOO_LARGE",
            f"a schedule's request has {size} bytes of JSON; the limit is "
            f"{L.MAX_SCHEDULE_REQUEST_BYTES} (put long texts in a file under DATA_ROOT)",
            details={"field": "request", "bytes": size, "limit": L.MAX_SCHEDULE_REQUEST_BYTES},
        )
    created = _CREATES.get(body.job_type)
    if created is not None and body.request.get(created) is not None:
        raise _invalid(f"request.{created}", f"every firing makes a new {created}; omit {created}")
    try:
        KEPT_REQUESTS[body.job_type].check(ctx, caller, body.request)
    except ModelTrainerError as exc:
        raise in_request(exc) from exc
    return {
        "schedule_id": uuid.uuid4().hex,
        "user_id": caller["user_id"],
        "key_id": caller["key_id"],
        "name": body.name,
        "job_type": body.job_type,
        "request": body.request,
        "cron": cron,
        "interval_s": interval,
        "paused": False,
        "created_at": iso(datetime.now(UTC)),
        "last_fired_at": None,
        "fired": 0,
        "refused": 0,
    }


def owned_schedule(store: ScheduleStore, caller: Principal, schedule_id: str) -> ScheduleRecord:
    record = store.get(schedule_id)
    if record is None or not (caller["admin"] or record["user_id"] == caller["user_id"]):
        raise ModelTrainerError(
            "SCHEDULE_NOT_FOUND",
            f"schedule {quoted(schedule_id)} does not exist",
            details={"schedule_id": schedule_id[:QUOTE_LIMIT]},
        )
    return record


def build_schedules_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["schedules"])
    key = Depends(ctx["caller"])
    store = ScheduleStore(ctx["redis"])

    def set_paused(caller: Principal, schedule_id: str, paused: bool) -> ScheduleView:
        owned_schedule(store, caller, schedule_id)
        record = store.set_paused(schedule_id, paused)
        # Deleted between the two reads: as unknown as it is now.
        return view(record or owned_schedule(store, caller, schedule_id))

    @router.post(
        "/v1/schedules",
        status_code=201,
        response_model=ScheduleView,
        responses=refusals("REQUEST_TOO_LARGE", "QUOTA_EXCEEDED", *TRAIN_REFUSALS),
    )
    def create_schedule(body: CreateScheduleRequest, caller: Principal = key) -> ScheduleView:
        """Submit a job request on a cron expression or an interval, as you. The request is
        checked now as its submission would be, so one that could never fire is refused."""
        record = new_schedule(ctx, caller, body)
        limit = ctx["settings"]["max_schedules_per_user"]
        return view(store.create(record, limit=limit))

    @router.get("/v1/schedules", response_model=ScheduleListBody, responses=refusals())
    def list_schedules(user_id: AdminUserId = None, caller: Principal = key) -> ScheduleListBody:
        """Your schedules, each with when it fires next."""
        records = store.list_for_user(listed_user(caller, user_id))
        return {"schedules": [view(record) for record in records]}

    @router.get(
        "/v1/schedules/{schedule_id}",
        response_model=ScheduleDetail,
        responses=refusals("SCHEDULE_NOT_FOUND"),
    )
    def get_schedule(schedule_id: ScheduleId, caller: Principal = key) -> ScheduleDetail:
        """A schedule and its newest firings (the jobs it submitted, or why it could not)."""
        record = owned_schedule(store, caller, schedule_id)
        return {**view(record), "firings": store.firings(schedule_id)}

    @router.post(
        "/v1/schedules/{schedule_id}/pause",
        response_model=ScheduleView,
        responses=refusals("SCHEDULE_NOT_FOUND"),
    )
    def pause_schedule(schedule_id: ScheduleId, caller: Principal = key) -> ScheduleView:
        """Stop firing until resumed."""
        return set_paused(caller, schedule_id, True)

    @router.post(
        "/v1/schedules/{schedule_id}/resume",
        response_model=ScheduleView,
        responses=refusals("SCHEDULE_NOT_FOUND"),
    )
    def resume_schedule(schedule_id: ScheduleId, caller: Principal = key) -> ScheduleView:
        """Slots missed while paused coalesce into one firing at once (README, "Schedules")."""
        return set_paused(caller, schedule_id, False)

    @router.delete(
        "/v1/schedules/{schedule_id}",
        response_model=ScheduleView,
        responses=refusals("SCHEDULE_NOT_FOUND"),
    )
    def delete_schedule(schedule_id: ScheduleId, caller: Principal = key) -> ScheduleView:
        """No more firings; the jobs it submitted stay."""
        record = owned_schedule(store, caller, schedule_id)
        store.delete(schedule_id, record["user_id"])
        return {**record, "next_fire_at": None}

    return router


def in_request(error: ModelTrainerError) -> ModelTrainerError:
    """The refusal with its field named inside the body sent: `request.<field>`."""
    field = error.details.get("field")
    if not isinstance(field, str) or field.startswith("request."):
        return error
    details = {**error.details, "field": f"request.{field}"}
    return ModelTrainerError(error.code, error.message, details=details)


def _invalid(field: str, message: str) -> ModelTrainerError:
    return ModelTrainerError("INVALID_CONFIG", message, details={"field": field})
