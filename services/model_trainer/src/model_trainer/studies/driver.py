"""Advancing a study: tell Optuna how finished trials ended, ask it for the next ones, submit
them as ordinary train jobs, and end the study when it is done.

Nothing waits for a trial: a study is advanced when one of its trials ends (by the trial's own
job, after its record is written) and by every worker's maintenance round (every few seconds,
only when something changed), so it goes on after an API restart or the death of whichever
process was advancing it. One process at a time advances a study (a Redis lock).

No trial is counted twice: a trial's job and run ids are fixed before it is submitted
(`{study_id}-trial-{n}`), so an interrupted submission is found or repeated, never doubled; a
trial is told to Optuna only while Optuna still has it running; the study counts our trial
records, whose state is written once the trial's job has ended.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping

import optuna
import orjson
from optuna.trial import FrozenTrial
from optuna.trial import TrialState as OptunaState
from redis.exceptions import LockError

from model_trainer.api import SubmitContext
from model_trainer.api.schemas import TrainJobRequest, train_request
from model_trainer.api.submit import submit_train, trial_id
from model_trainer.contracts.jobs import DOMAIN, TERMINAL_STATUSES, JobOrigin, JobRecord
from model_trainer.contracts.studies import (
    FINISHED_TRIALS,
    StudyError,
    StudyRecord,
    TrialRecord,
    TrialRef,
)
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.api_keys import Principal, key_active
from model_trainer.storage.job_store import JobStore
from model_trainer.storage.runs import utc_now
from model_trainer.storage.studies import StudyStore
from model_trainer.studies.optuna_study import distributions, open_study
from platform_core.json_types import JSONObject, load_json_object
from platform_workers.keys import study_lock_key
from platform_workers.redis_conn import RedisClient

logger = logging.getLogger(__name__)

# Refusals that pass: the owner's queue or quota is full now, or the CUDA workers its trials
# need are away (restarting); the trial waits for a later round.
WAIT_CODES = ("QUOTA_EXCEEDED", "QUEUE_FULL", "NO_CUDA_WORKER")
LOCK_TIMEOUT_S = 120
LOCK_WAIT_S = 30.0


def submit_context(settings: Settings, redis: RedisClient) -> SubmitContext:
    return {"settings": settings, "redis": redis, "jobs": JobStore(redis)}


def advance(ctx: SubmitContext, study_id: str) -> StudyRecord | None:
    """Bring the study up to date; its record afterwards (None when it does not exist)."""
    lock = ctx["redis"].lock(
        study_lock_key(DOMAIN, study_id), timeout=LOCK_TIMEOUT_S, blocking_timeout=LOCK_WAIT_S
    )
    if not lock.acquire():
        return StudyStore(ctx["redis"]).get(study_id)
    try:
        return _advance(ctx, study_id)
    finally:
        try:
            lock.release()
        except LockError:  # it expired while we worked: nobody else waited for it
            logger.warning("study %s: lock expired while advancing", study_id)


def advance_due(ctx: SubmitContext) -> list[str]:
    """Advance every running study that has something to do (a worker's maintenance round)."""
    store = StudyStore(ctx["redis"])
    advanced = []
    for study_id in store.running():
        record = store.get(study_id)
        if record is not None and _due(ctx, record, store.trials(study_id)):
            advance(ctx, study_id)
            advanced.append(study_id)
    return advanced


def _due(ctx: SubmitContext, record: StudyRecord, trials: list[TrialRecord]) -> bool:
    """Whether advancing would change anything: a trial to settle or submit, room for another,
    or the study's end. Reads only our records (no Optuna)."""
    if record["status"] != "running":
        return False
    active = [trial for trial in trials if trial["state"] in ("waiting", "running")]
    if any(trial["state"] == "waiting" for trial in active):
        return True
    jobs = ctx["jobs"].get_many([trial["job_id"] for trial in active])
    if any(job is None or job["status"] in TERMINAL_STATUSES for job in jobs):
        return True
    room = len(active) < record["spec"]["parallelism"]
    return (room and len(trials) < record["spec"]["n_trials"]) or not active


def _advance(ctx: SubmitContext, study_id: str) -> StudyRecord | None:
    store = StudyStore(ctx["redis"])
    record = store.get(study_id)
    if record is None or record["status"] != "running":
        return record
    trials = {trial["number"]: trial for trial in store.trials(study_id)}
    study = open_study(ctx["settings"], record, salt=len(trials))
    known = {trial.number: trial for trial in study.get_trials(deepcopy=False)}
    for trial in list(trials.values()):
        trials[trial["number"]] = _settle(ctx, study, record, trial, known)
    _forget_unrecorded(study, known, trials)
    try:
        for trial in list(trials.values()):
            if trial["state"] == "waiting" and not _past_deadline(record):
                trials[trial["number"]] = _submit(ctx, store, record, trial)
        _ask_more(ctx, store, study, record, trials)
    except _Wait:
        pass
    except ModelTrainerError as refused:
        return _end_refused(store, study, record, trials, refused)
    return _end_if_done(store, study, record, trials)


class _Wait(Exception):
    """The owner's queue is full: the trial stays waiting, and no more are asked this round."""


def _settle(
    ctx: SubmitContext,
    study: optuna.Study,
    record: StudyRecord,
    trial: TrialRecord,
    known: Mapping[int, FrozenTrial],
) -> TrialRecord:
    """Record (and tell Optuna) how a running trial's job ended; the trial as it is now."""
    if trial["state"] != "running":
        return trial
    job = ctx["jobs"].get(trial["job_id"])
    if job is None or job["status"] not in TERMINAL_STATUSES:
        return trial
    settled = _outcome(trial, job)
    frozen = known.get(trial["number"])
    if frozen is not None and frozen.state == OptunaState.RUNNING:
        _tell(study, settled)
    StudyStore(ctx["redis"]).put_trial(record["study_id"], settled)
    return settled


def _outcome(trial: TrialRecord, job: JobRecord) -> TrialRecord:
    settled: TrialRecord = {**trial, "finished_at": job["finished_at"] or utc_now()}
    result = job["result"]
    if job["status"] == "cancelled":
        settled["state"] = "cancelled"
    elif job["status"] == "failed" or result is None:
        error = job["error"] or {"code": "NO_RESULT", "message": "it ended without a result"}
        settled["state"] = "failed"
        settled["error"] = {"code": error["code"], "message": error["message"]}
    elif result.get("stop_reason") == "pruned":
        settled["state"] = "pruned"
        settled["value"] = _loss(result.get("val_loss"))
    else:
        best = _loss(result.get("best_val_loss"))
        settled["value"] = _loss(result.get("val_loss")) if best is None else best
        settled["state"] = "failed" if settled["value"] is None else "complete"
        if settled["value"] is None:
            settled["error"] = {"code": "NO_VAL_LOSS", "message": "it ended without a val_loss"}
    return settled


def _loss(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _tell(study: optuna.Study, trial: TrialRecord) -> None:
    if trial["state"] == "complete":
        study.tell(trial["number"], trial["value"])
    elif trial["state"] == "pruned":
        study.tell(trial["number"], state=OptunaState.PRUNED)
    else:
        study.tell(trial["number"], state=OptunaState.FAIL)


def _forget_unrecorded(
    study: optuna.Study, known: Mapping[int, FrozenTrial], trials: Mapping[int, TrialRecord]
) -> None:
    """A trial Optuna handed out but whose record was never written (the process asking died
    in between) never ran: Optuna is told it failed, and it does not count."""
    for number, frozen in known.items():
        if number not in trials and frozen.state == OptunaState.RUNNING:
            study.tell(number, state=OptunaState.FAIL)


def _ask_more(
    ctx: SubmitContext,
    store: StudyStore,
    study: optuna.Study,
    record: StudyRecord,
    trials: dict[int, TrialRecord],
) -> None:
    spec = record["spec"]
    space = distributions(spec)
    while _may_ask(record, trials):
        asked = study.ask(space)
        ids = trial_id({"study_id": record["study_id"], "number": asked.number})
        trial: TrialRecord = {
            "number": asked.number,
            "job_id": ids,
            "run_id": ids,
            "params": json_params(asked.params),
            "state": "waiting",
            "value": None,
            "error": None,
            "created_at": utc_now(),
            "finished_at": None,
        }
        store.put_trial(record["study_id"], trial)
        trials[trial["number"]] = trial
        trials[trial["number"]] = _submit(ctx, store, record, trial)
        if trials[trial["number"]]["state"] == "failed":
            study.tell(trial["number"], state=OptunaState.FAIL)


def _may_ask(record: StudyRecord, trials: Mapping[int, TrialRecord]) -> bool:
    spec = record["spec"]
    active = sum(1 for trial in trials.values() if trial["state"] in ("waiting", "running"))
    return (
        active < spec["parallelism"]
        and len(trials) < spec["n_trials"]
        and not _past_deadline(record)
    )


def _past_deadline(record: StudyRecord) -> bool:
    return record["deadline"] is not None and time.time() >= record["deadline"]


def json_params(params: Mapping[str, object]) -> JSONObject:
    """Optuna's sampled values as JSON data (ints, floats, strings, booleans)."""
    return load_json_object(orjson.dumps(dict(params)))


def _submit(
    ctx: SubmitContext, store: StudyStore, record: StudyRecord, trial: TrialRecord
) -> TrialRecord:
    """Submit a waiting trial as its owner; running once its job exists. A request its values
    make invalid fails the trial; a full queue raises _Wait; any other refusal (the owner's
    key revoked, the corpus gone) is the study's and propagates."""
    if ctx["jobs"].get(trial["job_id"]) is not None:  # submitted before an interruption
        return _put(store, record, {**trial, "state": "running"})
    owner = _owner(ctx["redis"], record)
    ref: TrialRef = {"study_id": record["study_id"], "number": trial["number"]}
    origin: JobOrigin = {"kind": "study", "id": record["study_id"], "trial": trial["number"]}
    try:
        submit_train(ctx, owner, trial_request(record, trial), origin, trial=ref)
    except ModelTrainerError as refused:
        if refused.code in WAIT_CODES:
            raise _Wait from refused
        if refused.code != "INVALID_CONFIG":
            raise
        error: StudyError = {"code": refused.code, "message": refused.message}
        failed: TrialRecord = {**trial, "state": "failed", "error": error, "finished_at": utc_now()}
        return _put(store, record, failed)
    return _put(store, record, {**trial, "state": "running"})


def _put(store: StudyStore, record: StudyRecord, trial: TrialRecord) -> TrialRecord:
    store.put_trial(record["study_id"], trial)
    return trial


def trial_request(record: StudyRecord, trial: TrialRecord) -> TrainJobRequest:
    """The base request with the trial's values and its own run id, validated as a request."""
    return train_request({**record["spec"]["base"], **trial["params"], "run_id": trial["run_id"]})


def _owner(redis: RedisClient, record: StudyRecord) -> Principal:
    if not key_active(redis, record["key_id"]):
        raise ModelTrainerError(
            "UNAUTHENTICATED",
            f"the API key {record['key_id']} that created the study was revoked",
        )
    return {
        "user_id": record["user_id"],
        "user": record["user"],
        "admin": record["admin"],
        "key_id": record["key_id"],
    }


def _end_refused(
    store: StudyStore,
    study: optuna.Study,
    record: StudyRecord,
    trials: Mapping[int, TrialRecord],
    refused: ModelTrainerError,
) -> StudyRecord:
    """A trial the study cannot submit at all: the study fails, its unsubmitted trials too."""
    logger.warning("study %s failed: %s: %s", record["study_id"], refused.code, refused.message)
    _cancel_waiting(store, study, record, trials)
    error: StudyError = {"code": refused.code, "message": refused.message}
    return store.end(record, "failed", "refused", now=utc_now(), error=error)


def _end_if_done(
    store: StudyStore,
    study: optuna.Study,
    record: StudyRecord,
    trials: Mapping[int, TrialRecord],
) -> StudyRecord:
    """End the study once its trials are done, or its time is up and none still runs."""
    if any(trial["state"] == "running" for trial in trials.values()):
        return record
    finished = sum(1 for trial in trials.values() if trial["state"] in FINISHED_TRIALS)
    if finished >= record["spec"]["n_trials"]:
        return store.end(record, "completed", "n_trials", now=utc_now())
    if _past_deadline(record):
        _cancel_waiting(store, study, record, trials)
        return store.end(record, "completed", "timeout", now=utc_now())
    return record


def _cancel_waiting(
    store: StudyStore,
    study: optuna.Study,
    record: StudyRecord,
    trials: Mapping[int, TrialRecord],
) -> None:
    """Trials asked for but never submitted, once the study ends: failed to Optuna, cancelled
    in our records."""
    for trial in trials.values():
        if trial["state"] == "waiting":
            study.tell(trial["number"], state=OptunaState.FAIL)
            store.put_trial(
                record["study_id"], {**trial, "state": "cancelled", "finished_at": utc_now()}
            )
