"""Checking a study request before anything is stored: what its trials could not honour is
refused now, not found out trial by trial.

The base request passes every check a train submission makes (`submit.plan_train`, which
writes nothing), and so does each value a parameter can take (one parameter at a time at its
ends or choices), and the corner where every numeric parameter is at its largest (the tokens
one step holds). A study that trains on CUDA needs a CUDA worker now.
"""

from __future__ import annotations

from pydantic import TypeAdapter

from model_trainer.api import SubmitContext
from model_trainer.api.schemas import ParamRequest, StudyRequest, TrainJobRequest, train_request
from model_trainer.api.submit import job_device, plan_train
from model_trainer.api.worker_presence import require_cuda_worker
from model_trainer.contracts import studies as S
from model_trainer.contracts.studies import Choice, ParamSpec, StudySpec, grid_values
from model_trainer.errors import ModelTrainerError
from model_trainer.storage.api_keys import Principal
from platform_core.json_types import JSONObject, load_json_object

_TRAIN_REQUEST = TypeAdapter(TrainJobRequest)


def checked_spec(ctx: SubmitContext, caller: Principal, body: StudyRequest) -> StudySpec:
    base = body.base
    if base.run_id is not None:
        raise _invalid("base.run_id", "each trial trains its own run; omit base.run_id")
    if base.val_fraction <= 0.0:
        raise _invalid("base.val_fraction", "trials are judged by val_loss: set val_fraction > 0")
    if body.pruner == "median" and base.eval_every_steps is None:
        raise _invalid(
            "base.eval_every_steps", "the median pruner needs a val_loss every eval_every_steps"
        )
    workers_allowed = ctx["settings"]["max_active_jobs"]["train"]
    if body.parallelism > workers_allowed:
        raise _invalid(
            "parallelism",
            f"parallelism {body.parallelism} exceeds your {workers_allowed} train jobs at once "
            "(MAX_ACTIVE_JOBS_TRAIN)",
        )
    space = [_checked_param(param, index) for index, param in enumerate(body.search_space)]
    if len({param["name"] for param in space}) < len(space):
        raise _invalid("search_space", "each field may be tuned by one parameter only")
    if body.sampler == "grid":
        _check_grid(space, body.n_trials)
    base_fields = load_json_object_of(base)
    for variant in _variants(space):
        _check_trial(ctx, caller, base_fields, variant)
    if job_device(base) == "cuda":  # later trials wait for one (a worker restarting)
        require_cuda_worker(ctx["redis"], "train", base.priority)
    return {
        "name": body.name,
        "base": base_fields,
        "search_space": space,
        "sampler": body.sampler,
        "pruner": body.pruner,
        "pruner_startup_trials": body.pruner_startup_trials,
        "pruner_warmup_steps": body.pruner_warmup_steps,
        "n_trials": body.n_trials,
        "parallelism": body.parallelism,
        "timeout_s": body.timeout_s,
        "metric": body.metric,
        "seed": body.seed,
    }


def load_json_object_of(base: TrainJobRequest) -> JSONObject:
    """The base request as the JSON fields it was sent with (defaults filled in)."""
    return load_json_object(_TRAIN_REQUEST.dump_json(base))


def _checked_param(param: ParamRequest, index: int) -> ParamSpec:
    where = f"search_space.{index}"
    allowed = {
        "int": S.INT_FIELDS,
        "float": S.FLOAT_FIELDS,
        "categorical": S.CATEGORICAL_FIELDS,
    }[param.type]
    if param.name not in allowed:
        raise _invalid(
            f"{where}.name",
            f"a {param.type} parameter tunes one of {', '.join(allowed)}, not {param.name!r}",
        )
    spec: ParamSpec = {
        "name": param.name,
        "type": param.type,
        "low": None if param.low is None else float(param.low),
        "high": None if param.high is None else float(param.high),
        "step": None if param.step is None else float(param.step),
        "log": param.log,
        "choices": param.choices,
    }
    if param.type == "categorical":
        if param.choices is None or param.low is not None or param.high is not None:
            raise _invalid(where, "a categorical parameter takes choices, not low and high")
        return spec
    _check_range(spec, where)
    return spec


def _check_range(spec: ParamSpec, where: str) -> None:
    low, high, step = spec["low"], spec["high"], spec["step"]
    if spec["choices"] is not None or low is None or high is None:
        raise _invalid(where, f"an {spec['type']} parameter takes low and high, not choices")
    if low > high:
        raise _invalid(where, f"low {low} exceeds high {high}")
    integral = all(value is None or value.is_integer() for value in (low, high, step))
    if spec["type"] == "int" and not integral:
        raise _invalid(where, "an int parameter's low, high and step are whole numbers")
    # Optuna samples a log range's logarithm evenly: no grid step on top (an int's is 1).
    stepped = step is not None and not (spec["type"] == "int" and step == 1)
    if spec["log"] and (low <= 0 or stepped):
        raise _invalid(where, "a log-scaled range needs low > 0 and no step")


def _check_grid(space: list[ParamSpec], n_trials: int) -> None:
    points = 1
    for index, param in enumerate(space):
        values = grid_values(param)
        if values is None:
            raise _invalid(
                f"search_space.{index}",
                "grid search needs int ranges or choices; give a float's values as choices",
            )
        points *= len(values)
        if points > S.MAX_GRID_POINTS:
            raise _invalid("search_space", f"the grid exceeds {S.MAX_GRID_POINTS} points")
    if n_trials > points:
        raise _invalid("n_trials", f"the grid has {points} points; n_trials must be <= {points}")


def _ends(param: ParamSpec) -> list[Choice]:
    """The values that bound what a parameter can take."""
    if param["choices"] is not None:
        return param["choices"]
    low, high = param["low"] or 0.0, param["high"] or 0.0
    return [int(low), int(high)] if param["type"] == "int" else [low, high]


def _variants(space: list[ParamSpec]) -> list[JSONObject]:
    """Each parameter alone at each of its ends, then every numeric one at its largest."""
    variants: list[JSONObject] = [
        {param["name"]: value} for param in space for value in _ends(param)
    ]
    corner: JSONObject = {}
    for param in space:
        numbers = [
            value
            for value in _ends(param)
            if isinstance(value, int | float) and not isinstance(value, bool)
        ]
        if numbers and len(numbers) == len(_ends(param)):
            corner[param["name"]] = max(numbers)
    variants.append(corner)
    return variants


def _check_trial(
    ctx: SubmitContext, caller: Principal, base: JSONObject, variant: JSONObject
) -> None:
    """The base request with the variant's values passes as a request and as a submission."""
    try:
        request = train_request({**base, **variant})
    except ModelTrainerError as exc:
        field = exc.details["field"]
        raise _invalid(f"base.{field}", f"a trial with {variant}: {exc.message}") from exc
    try:
        plan_train(ctx, caller, request)
    except ModelTrainerError as exc:
        message = f"a trial with {variant} would be refused: {exc.message}"
        raise ModelTrainerError(exc.code, message, details=exc.details) from exc


def _invalid(field: str, message: str) -> ModelTrainerError:
    return ModelTrainerError("INVALID_CONFIG", message, details={"field": field})
