"""Job requests kept as JSON and submitted later, by a schedule's firings.

A kept body is parsed by its job type's request class, as `POST /v1/jobs/{type}` parses one,
then goes through the same functions the job routes call: `check` runs every check that writes
nothing (plan_*), `submit` submits it (submit_*), so keys, quotas, ownership and limits apply
alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from pydantic import TypeAdapter, ValidationError

from model_trainer.api import SubmitContext
from model_trainer.api.schemas import (
    EvalJobRequest,
    ExportJobRequest,
    GenerateJobRequest,
    ScoreJobRequest,
    TokenizerJobRequest,
    TrainJobRequest,
)
from model_trainer.api.submit import (
    PlannedJob,
    SubmittedJob,
    enqueue_planned,
    plan_eval,
    plan_export,
    plan_generate,
    plan_score,
    plan_tokenizer,
    plan_train,
)
from model_trainer.contracts.jobs import JobOrigin, JobType
from model_trainer.errors import ModelTrainerError
from model_trainer.storage.api_keys import Principal
from platform_core.json_types import JSONObject

R = TypeVar("R")


class KeptRequest(Protocol):
    def check(self, ctx: SubmitContext, caller: Principal, body: JSONObject) -> None: ...

    def submit(
        self, ctx: SubmitContext, caller: Principal, body: JSONObject, origin: JobOrigin
    ) -> SubmittedJob: ...


class _Kind(Generic[R]):
    """One job type: its request class and its plan (submitted like any plan)."""

    def __init__(
        self, request_type: type[R], plan: Callable[[SubmitContext, Principal, R], PlannedJob]
    ) -> None:
        self._adapter = TypeAdapter(request_type)
        self._plan = plan

    def parse(self, body: JSONObject) -> R:
        """The request, or INVALID_CONFIG naming the first bad field as `request.<field>`."""
        try:
            return self._adapter.validate_python(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(["request", *(str(part) for part in first["loc"])])
            raise ModelTrainerError(
                "INVALID_CONFIG", f"{field}: {first['msg']}", details={"field": field}
            ) from exc

    def check(self, ctx: SubmitContext, caller: Principal, body: JSONObject) -> None:
        self._plan(ctx, caller, self.parse(body))

    def submit(
        self, ctx: SubmitContext, caller: Principal, body: JSONObject, origin: JobOrigin
    ) -> SubmittedJob:
        return enqueue_planned(ctx, caller, self._plan(ctx, caller, self.parse(body)), origin)


KEPT_REQUESTS: dict[JobType, KeptRequest] = {
    "train": _Kind(TrainJobRequest, plan_train),
    "eval": _Kind(EvalJobRequest, plan_eval),
    "score": _Kind(ScoreJobRequest, plan_score),
    "generate": _Kind(GenerateJobRequest, plan_generate),
    "tokenizer": _Kind(TokenizerJobRequest, plan_tokenizer),
    "export": _Kind(ExportJobRequest, plan_export),
}
