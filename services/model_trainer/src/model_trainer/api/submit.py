"""Job submission: validate a request (plan_*), then record and enqueue it in one atomic step.

Everything that can be refused is refused before anything is written, so a bad request leaves
no trace in Redis: the checks that read files and settings happen here, and the ones that read
Redis (ownership, quota, depth, the id claim) happen inside the submission script, which writes
the record and the RQ job together (storage/submissions.py), so a worker never picks up a job
whose record does not exist. Paths in payloads are absolute and already confined, so the worker
reads exactly the file the API checked.
"""

from __future__ import annotations

import logging
import re
import stat
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache, partial
from pathlib import Path
from typing import TypeVar

from starlette.concurrency import run_in_threadpool
from typing_extensions import TypedDict

from model_trainer.api import SubmitContext
from model_trainer.api.admission import active_key, depth_keys, prune, queue_full, quota_exceeded
from model_trainer.api.auth import unauthenticated
from model_trainer.api.schemas import (
    EvalJobRequest,
    ExportJobRequest,
    GenerateJobRequest,
    ScoreJobRequest,
    TokenizerJobRequest,
    TrainJobRequest,
    train_request_options,
)
from model_trainer.api.worker_presence import require_cuda_worker
from model_trainer.backends.presets import check_fits_preset, check_model_size
from model_trainer.contracts import limits as L
from model_trainer.contracts.defaults import (
    make_eval_config,
    make_generate_config,
    make_score_config,
    make_tokenizer_config,
)
from model_trainer.contracts.export import make_export_config
from model_trainer.contracts.jobs import (
    QUEUE_FOR_TYPE,
    WORKER_FUNCTIONS,
    EvalJobPayload,
    ExportJobPayload,
    GenerateJobPayload,
    JobDevice,
    JobOrigin,
    JobRecord,
    JobStatus,
    JobType,
    QueueName,
    ScoreJobPayload,
    TokenizerJobPayload,
    TrainJobPayload,
    rq_queue,
)
from model_trainer.contracts.studies import TrialRef
from model_trainer.contracts.train_config import ParentRef, make_train_config
from model_trainer.contracts.validators import parse_model_family
from model_trainer.errors import ModelTrainerError, quoted
from model_trainer.settings import Settings
from model_trainer.storage.api_keys import KeyProof, Principal
from model_trainer.storage.artifacts import fetch, stored
from model_trainer.storage.checkpoints import (
    CHECKPOINTS_DIR,
    METRICS_FILE,
    checkpoint_name,
    find_checkpoint,
)
from model_trainer.storage.corpora import cached_corpus, confine, corpus_roots, local_corpus_path
from model_trainer.storage.models import ModelStore
from model_trainer.storage.owners import (
    Owned,
    corpora_key,
    has_corpus,
    owner_of,
    owner_of_async,
    owners_key,
    owns,
)
from model_trainer.storage.provenance import checkpoint_dir
from model_trainer.storage.run_store import run_stored
from model_trainer.storage.runs import MANIFEST_FILE, read_manifest, run_dir, unreadable_manifest
from model_trainer.storage.submissions import Outcome, RQCall, Submission, rq_job
from model_trainer.storage.submissions import submit as submit_script
from model_trainer.storage.submissions import submit_async as submit_script_async
from model_trainer.tokenizers.store import (
    fetch_tokenizer,
    read_meta,
    require_tokenizer,
    tokenizer_exists,
)
from platform_core.json_types import (
    JSONObject,
    load_json_object,
    require_int,
    require_object,
    require_str,
)
from platform_core.structured_logs import FIELDS_ATTR
from platform_workers.redis_batch import PipelineBatch

logger = logging.getLogger(__name__)

# Every request names its time limit and priority.
JobRequest = (
    TrainJobRequest
    | EvalJobRequest
    | ScoreJobRequest
    | GenerateJobRequest
    | TokenizerJobRequest
    | ExportJobRequest
)
JobPayload = (
    TrainJobPayload
    | EvalJobPayload
    | ScoreJobPayload
    | GenerateJobPayload
    | TokenizerJobPayload
    | ExportJobPayload
)

# The jobs that use a trained run (or a registered model version).
RunJob = TypeVar("RunJob", EvalJobRequest, ScoreJobRequest, GenerateJobRequest, ExportJobRequest)

_CORPUS_ID = re.compile(r"^[0-9a-f]{64}$")
_READ_CHUNK = 1 << 16
_DAY_S = 24 * 3600


# A train job whose worker died is retried by RQ's started-registry cleanup and resumes from its
# last checkpoint; inference is cheap to resubmit, so it is never retried behind the user's back.
# How long a job may run comes from settings (`job_timeout_s`), per job type.
QUEUE_RETRIES: dict[QueueName, int] = {"train": 2, "infer": 0}
RESULT_TTL_S = 7 * _DAY_S
FAILURE_TTL_S = 7 * _DAY_S


class SubmittedJob(TypedDict):
    """202 body of every job submission; `run_id` is the run a job trains or uses (none for
    tokenizer jobs)."""

    job_id: str
    type: JobType
    status: JobStatus
    queue: QueueName
    run_id: str | None


class PlannedJob(TypedDict):
    """A submission that passed every check that writes nothing (plan_*): what
    record_and_enqueue then admits, records and enqueues. A schedule plans its request when it
    is created, so a request that could never be submitted is refused then."""

    job_type: JobType
    payload: JobPayload
    request: JobRequest
    claim: PlannedClaim | None
    # An upload the job reads: it must still be the caller's when the job is recorded.
    corpus_id: str | None


class PlannedClaim(TypedDict):
    """An id the job creates; `exists` when it is already on disk (a run to resume)."""

    kind: Owned
    name: str
    exists: bool


def submit_train(
    ctx: SubmitContext,
    caller: Principal,
    body: TrainJobRequest,
    origin: JobOrigin | None = None,
    *,
    trial: TrialRef | None = None,
) -> SubmittedJob:
    """A study's trial names its job id (`{study_id}-trial-{n}`, as its run id), so the study
    can tell whether a submission it was making when interrupted got through."""
    return enqueue_planned(ctx, caller, plan_train(ctx, caller, body, trial=trial), origin)


async def submit_train_async(
    ctx: SubmitContext,
    batch: PipelineBatch,
    caller: Principal,
    body: TrainJobRequest,
    proof: KeyProof | None = None,
) -> SubmittedJob:
    """POST /v1/jobs/train on the event loop, costing no thread: planning reads local files
    only (a stat, the corpus's first bytes) and the owners it would read are checked by the
    submission script, one awaited round trip. A plan that reads more (the artifacts that
    continue_from, tokenizer_id or init_from name, and their owners; any file of an S3 artifact
    store) runs in a thread. A caller whose principal came from the API's cache sends the
    `proof` its key still holds, checked by the script too."""
    named = (body.continue_from, body.tokenizer_id, body.init_from) != (None, None, None)
    if ctx["settings"]["artifacts_s3"] is None and not named:
        plan = plan_train(ctx, caller, body, lookups=False)
    else:
        plan = await run_in_threadpool(partial(plan_train, ctx, caller, body, lookups=False))
    return await enqueue_planned_async(ctx, batch, caller, plan, None, proof=proof)


async def submit_run_job_async(
    ctx: SubmitContext,
    batch: PipelineBatch,
    caller: Principal,
    body: RunJob,
    plan: Callable[[SubmitContext, Principal, RunJob, bool | None], PlannedJob],
) -> SubmittedJob:
    """Eval, score, generate and export on the event loop: whose the run is is one awaited read
    (in the loop turn's batch), planning reads local files, the submission one awaited script.
    A job naming a registered model (a registry read) or an S3 artifact store (network reads)
    plans in a thread."""
    if ctx["settings"]["artifacts_s3"] is not None or body.model is not None or body.run_id is None:
        planned = await run_in_threadpool(plan, ctx, caller, body, None)
    else:
        owner = None if caller["admin"] else await owner_of_async(batch, "run", body.run_id)
        planned = plan(ctx, caller, body, caller["admin"] or owner == caller["user_id"])
    return await enqueue_planned_async(ctx, batch, caller, planned, None)


def plan_train(
    ctx: SubmitContext,
    caller: Principal,
    body: TrainJobRequest,
    *,
    trial: TrialRef | None = None,
    lookups: bool = True,
) -> PlannedJob:
    """Without `lookups`, the run id's owner and the corpus upload's are not read here: the
    submission script checks both as it records the job (the API's fast path, which plans on
    the event loop); a plan that is only checked, never enqueued (a study's base request, a
    schedule's), needs them."""
    job_id = uuid.uuid4().hex if trial is None else trial_id(trial)
    settings = ctx["settings"]
    run_id = f"run-{job_id}" if body.run_id is None else body.run_id
    directory = run_dir(settings, run_id)
    # A fresh random id names nothing stored: only a chosen id (or a trial's) is looked up.
    exists = (body.run_id is not None or trial is not None) and run_stored(settings, run_id)
    if lookups or exists:  # whose it is comes before what state it is in
        check_id_free(ctx, caller, "run", run_id, exists=exists)
    if exists and stored(settings, directory / MANIFEST_FILE):
        # A run without a manifest (cancelled, crashed) resumes from its checkpoint instead.
        raise _invalid("run_id", f"run {run_id} already finished training; choose a new run_id")
    family = parse_model_family(body.model_family)
    check_model_size(family, body.model_size)
    if body.init_from is None:  # a checkpoint's context is checked when it is loaded
        check_fits_preset(family, body.model_size, body.max_seq_len)
    check_step_tokens(settings, body.batch_size * body.max_seq_len * body.grad_accum_steps)
    check_processes(settings, body.num_processes)
    parent, tokenizer_id = None, body.tokenizer_id
    if body.continue_from is not None:
        parent, tokenizer_id = checked_parent(ctx, caller, body, body.continue_from)
    elif body.tokenizer_id is not None:
        owned_tokenizer(ctx, caller, body.tokenizer_id)
    corpus = chosen_corpus(ctx, caller, body.corpus_id, body.corpus_path, lookups=lookups)
    if corpus is None:
        raise _invalid("corpus_id", "corpus_id or corpus_path is required")
    options = train_request_options(body)
    if body.init_from is not None:
        options["init_from"] = checked_init_from(ctx, caller, body)
    config = make_train_config(
        model_family=family,
        model_size=body.model_size,
        corpus_path=str(corpus),
        options=options,
        parent=parent,
    )
    payload: TrainJobPayload = {
        "job_id": job_id,
        "user_id": caller["user_id"],
        "run_id": run_id,
        "config": config,
        "tokenizer_id": tokenizer_id,
    }
    if trial is not None:
        payload["trial"] = trial
    claim: PlannedClaim = {"kind": "run", "name": run_id, "exists": exists}
    return planned(ctx, "train", payload, body, claim=claim, corpus_id=body.corpus_id)


def trial_id(trial: TrialRef) -> str:
    """A trial's job id and run id."""
    return f"{trial['study_id']}-trial-{trial['number']}"


def submit_tokenizer(
    ctx: SubmitContext,
    caller: Principal,
    body: TokenizerJobRequest,
    origin: JobOrigin | None = None,
) -> SubmittedJob:
    return enqueue_planned(ctx, caller, plan_tokenizer(ctx, caller, body), origin)


def plan_tokenizer(ctx: SubmitContext, caller: Principal, body: TokenizerJobRequest) -> PlannedJob:
    """The tokenizer's id is chosen here (default `{kind}-{job_id}`) and must be new."""
    settings = ctx["settings"]
    job_id = uuid.uuid4().hex
    tokenizer_id = f"{body.kind}-{job_id}" if body.tokenizer_id is None else body.tokenizer_id
    claimed = owner_of(ctx["redis"], "tokenizer", tokenizer_id) is not None
    if claimed or tokenizer_exists(tokenizer_id, settings):
        raise _invalid(
            "tokenizer_id", f"tokenizer {tokenizer_id} already exists; choose a new tokenizer_id"
        )
    corpus = chosen_corpus(ctx, caller, body.corpus_id, body.corpus_path)
    if corpus is None:
        raise _invalid("corpus_id", "corpus_id or corpus_path is required")
    config = make_tokenizer_config(
        corpus_path=str(corpus),
        tokenizer_id=tokenizer_id,
        kind=body.kind,
        vocab_size=body.vocab_size,
    )
    payload: TokenizerJobPayload = {
        "job_id": job_id,
        "user_id": caller["user_id"],
        "config": config,
    }
    claim: PlannedClaim = {"kind": "tokenizer", "name": tokenizer_id, "exists": False}
    return planned(ctx, "tokenizer", payload, body, claim=claim, corpus_id=body.corpus_id)


def plan_eval(
    ctx: SubmitContext, caller: Principal, body: EvalJobRequest, owned: bool | None = None
) -> PlannedJob:
    settings = ctx["settings"]
    run_id, step = target_run(ctx, caller, body.run_id, body.model, body.step)
    manifest = owned_manifest(ctx, caller, run_id, owned)
    checked_step(ctx, run_id, step)
    check_fits_run(manifest, run_id, body.max_seq_len)
    check_step_tokens(settings, body.batch_size * body.max_seq_len)
    corpus = chosen_corpus(ctx, caller, body.corpus_id, body.corpus_path, lookups=owned is None)
    if corpus is None:
        corpus = _training_corpus(settings, run_id, manifest)
    config = make_eval_config(
        corpus_path=str(corpus),
        split=body.split,
        val_fraction=body.val_fraction,
        max_seq_len=body.max_seq_len,
        batch_size=body.batch_size,
        max_batches=body.max_batches,
    )
    payload: EvalJobPayload = {
        "job_id": uuid.uuid4().hex,
        "user_id": caller["user_id"],
        "run_id": run_id,
        "config": config,
        "step": step,
    }
    return planned(ctx, "eval", payload, body, corpus_id=body.corpus_id)


def plan_score(
    ctx: SubmitContext, caller: Principal, body: ScoreJobRequest, owned: bool | None = None
) -> PlannedJob:
    settings = ctx["settings"]
    run_id, step = target_run(ctx, caller, body.run_id, body.model, body.step)
    owned_manifest(ctx, caller, run_id, owned)
    checked_step(ctx, run_id, step)
    config = make_score_config(
        text=body.text,
        path=body.path,
        detail_level=body.detail_level,
        top_k=body.top_k,
        seed=body.seed,
    )
    if config["text"] is not None:
        check_text_size(settings, len(config["text"].encode()), "text")
    if config["path"] is not None:
        config["path"] = str(_text_file(settings, config["path"], "path"))
    payload: ScoreJobPayload = {
        "job_id": uuid.uuid4().hex,
        "user_id": caller["user_id"],
        "run_id": run_id,
        "config": config,
        "step": step,
    }
    return planned(ctx, "score", payload, body)


def plan_generate(
    ctx: SubmitContext, caller: Principal, body: GenerateJobRequest, owned: bool | None = None
) -> PlannedJob:
    settings = ctx["settings"]
    run_id, step = target_run(ctx, caller, body.run_id, body.model, body.step)
    owned_manifest(ctx, caller, run_id, owned)
    checked_step(ctx, run_id, step)
    config = make_generate_config(
        prompt_text=body.prompt_text,
        prompt_path=body.prompt_path,
        max_new_tokens=body.max_new_tokens,
        temperature=body.temperature,
        top_k=body.top_k,
        top_p=body.top_p,
        stop_on_eos=body.stop_on_eos,
        seed=body.seed,
        num_return_sequences=body.num_return_sequences,
    )
    if config["prompt_text"] is not None:
        check_text_size(settings, len(config["prompt_text"].encode()), "prompt_text")
    if config["prompt_path"] is not None:
        config["prompt_path"] = str(_text_file(settings, config["prompt_path"], "prompt_path"))
    payload: GenerateJobPayload = {
        "job_id": uuid.uuid4().hex,
        "user_id": caller["user_id"],
        "run_id": run_id,
        "config": config,
        "step": step,
    }
    return planned(ctx, "generate", payload, body)


def plan_export(
    ctx: SubmitContext, caller: Principal, body: ExportJobRequest, owned: bool | None = None
) -> PlannedJob:
    run_id, step = target_run(ctx, caller, body.run_id, body.model, body.step)
    owned_manifest(ctx, caller, run_id, owned)
    checked_step(ctx, run_id, step)
    payload: ExportJobPayload = {
        "job_id": uuid.uuid4().hex,
        "user_id": caller["user_id"],
        "run_id": run_id,
        "step": step,
        "config": make_export_config(),
    }
    return planned(ctx, "export", payload, body)


def planned(
    ctx: SubmitContext,
    job_type: JobType,
    payload: JobPayload,
    request: JobRequest,
    *,
    claim: PlannedClaim | None = None,
    corpus_id: str | None = None,
) -> PlannedJob:
    job_time_limit(ctx["settings"], job_type, request.timeout_s)
    return {
        "job_type": job_type,
        "payload": payload,
        "request": request,
        "claim": claim,
        "corpus_id": corpus_id,
    }


def enqueue_planned(
    ctx: SubmitContext, caller: Principal, plan: PlannedJob, origin: JobOrigin | None
) -> SubmittedJob:
    """Admit the job, claim the id it creates, write the queued record and hand RQ the worker's
    dotted path and the JSON payload, on the RQ queue of the request's priority and device (a
    job that needs CUDA only while a CUDA worker listens there): one script, one round trip.

    RQ stops the job (JOB_TIMEOUT) once it has run `timeout_s` seconds, or the type's limit.
    """
    if job_device(plan["request"]) == "cuda":
        require_cuda_worker(
            ctx["redis"], QUEUE_FOR_TYPE[plan["job_type"]], plan["request"].priority
        )
    job = submission(ctx, caller, plan, origin)
    outcome = submit_script(ctx["redis"], job, time.time())
    if outcome["refusal"] == "QUOTA_EXCEEDED" and prune(
        ctx["redis"], job["active_key"], time.time()
    ):
        outcome = submit_script(ctx["redis"], job, time.time())
    return submitted(caller, plan, job, outcome)


async def enqueue_planned_async(
    ctx: SubmitContext,
    batch: PipelineBatch,
    caller: Principal,
    plan: PlannedJob,
    origin: JobOrigin | None,
    *,
    proof: KeyProof | None = None,
) -> SubmittedJob:
    """enqueue_planned on the event loop: the script's round trip is awaited; the rare reads
    (the CUDA workers, a quota's repair) run in a thread."""
    if job_device(plan["request"]) == "cuda":
        await run_in_threadpool(
            require_cuda_worker,
            ctx["redis"],
            QUEUE_FOR_TYPE[plan["job_type"]],
            plan["request"].priority,
        )
    job = submission(ctx, caller, plan, origin, proof)
    outcome = await submit_script_async(batch, job, time.time())
    if outcome["refusal"] == "QUOTA_EXCEEDED":
        pruned = await run_in_threadpool(prune, ctx["redis"], job["active_key"], time.time())
        if pruned:
            outcome = await submit_script_async(batch, job, time.time())
    return submitted(caller, plan, job, outcome)


def submission(
    ctx: SubmitContext,
    caller: Principal,
    plan: PlannedJob,
    origin: JobOrigin | None,
    proof: KeyProof | None = None,
) -> Submission:
    """The record and RQ job of a planned submission, as the submission script writes them."""
    settings, request, payload = ctx["settings"], plan["request"], plan["payload"]
    job_type = plan["job_type"]
    job_id, run_id = payload["job_id"], _run_id(payload)
    queue_name = QUEUE_FOR_TYPE[job_type]
    record: JobRecord = {
        "job_id": job_id,
        "user_id": payload["user_id"],
        "type": job_type,
        "queue": queue_name,
        "status": "queued",
        "progress": 0.0,
        "message": "queued",
        "attempts": 0,
        "created_at": created_now(),
        "started_at": None,
        "finished_at": None,
        "heartbeat_at": None,
        "run_id": run_id,
        "result": None,
        "error": None,
        "priority": request.priority,
        "origin": origin,
    }
    queue = rq_queue(queue_name, request.priority, job_device(request))
    call: RQCall = {
        "queue": queue,
        "func": WORKER_FUNCTIONS[job_type],
        "timeout": job_time_limit(settings, job_type, request.timeout_s),
        "retries": QUEUE_RETRIES[queue_name],
        "result_ttl": RESULT_TTL_S,
        "failure_ttl": FAILURE_TTL_S,
    }
    description = f"{job_type} {run_id or job_id}"
    claim = plan["claim"]
    corpus_id = plan["corpus_id"]
    return {
        "record": record,
        "active_key": active_key(caller["user_id"], queue_name),
        "depth_keys": depth_keys(queue_name),
        "max_depth": settings["max_queue_depth"],
        "max_active": settings["max_active_jobs"][queue_name],
        "claim": None
        if claim is None
        else {
            "owners_key": owners_key(claim["kind"]),
            "name": claim["name"],
            "refuse_unclaimed": claim["exists"] and not caller["admin"],
        },
        "corpus": None
        if corpus_id is None or caller["admin"]
        else (corpora_key(caller["user_id"]), corpus_id),
        "rq_job": rq_job(call, payload, job_id=job_id, description=description),
        "key_proof": proof,
    }


def submitted(
    caller: Principal, plan: PlannedJob, job: Submission, outcome: Outcome
) -> SubmittedJob:
    """The 202 body, or the script's refusal as its coded error."""
    record = job["record"]
    if outcome["refusal"] is not None:
        raise refused(outcome, plan, job)
    fields = {
        "event": "job.submitted",
        "job_id": record["job_id"],
        "user_id": caller["user_id"],
        "type": record["type"],
        "queue": job["rq_job"]["origin"],
        "run_id": record["run_id"],
        "origin": None if record["origin"] is None else record["origin"]["kind"],
    }
    logger.info(
        "job submitted: %s %s", record["type"], record["job_id"], extra={FIELDS_ATTR: fields}
    )
    return {
        "job_id": record["job_id"],
        "type": record["type"],
        "status": "queued",
        "queue": record["queue"],
        "run_id": record["run_id"],
    }


def refused(outcome: Outcome, plan: PlannedJob, job: Submission) -> ModelTrainerError:
    refusal, claim, queue = outcome["refusal"], plan["claim"], job["record"]["queue"]
    if refusal == "UNAUTHENTICATED":
        return unauthenticated()
    if refusal == "QUEUE_FULL":
        return queue_full(queue, outcome["count"])
    if refusal == "QUOTA_EXCEEDED":
        return quota_exceeded(queue, outcome["count"], job["max_active"])
    if refusal == "ID_TAKEN" and claim is not None:
        return id_taken(claim["kind"], claim["name"])
    return corpus_not_found(str(plan["corpus_id"]))


def job_device(request: JobRequest) -> JobDevice:
    """A train job that asks for device "cuda" needs a CUDA worker; `auto` takes what its
    worker has, and no other job type names a device."""
    return "cuda" if isinstance(request, TrainJobRequest) and request.device == "cuda" else "any"


def job_time_limit(settings: Settings, job_type: JobType, requested: int | None) -> int:
    """The type's limit from settings, or a shorter one the request asks for."""
    limit = settings["job_timeout_s"][job_type]
    if requested is None:
        return limit
    if not 1 <= requested <= limit:
        raise _invalid(
            "timeout_s", f"timeout_s for {job_type} jobs must be in [1, {limit}], got {requested}"
        )
    return requested


def _run_id(payload: JobPayload) -> str | None:
    """The run a job trains or uses; a tokenizer job has none."""
    run_id = payload.get("run_id")
    return run_id if isinstance(run_id, str) else None


def created_now() -> str:
    """Microsecond timestamps, so jobs submitted in the same millisecond still list in order."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def chosen_corpus(
    ctx: SubmitContext,
    caller: Principal,
    corpus_id: str | None,
    corpus_path: str | None,
    *,
    lookups: bool = True,
) -> Path | None:
    """The checked corpus file a request names (one of the caller's uploads, or a path under
    DATA_ROOT, which every user may read), if any. Without `lookups` whose upload it is is left
    to the submission script."""
    settings = ctx["settings"]
    if corpus_id is not None and corpus_path is not None:
        raise _invalid("corpus_path", "corpus_path must be omitted when corpus_id is given")
    if corpus_id is not None:
        if not _CORPUS_ID.fullmatch(corpus_id):
            raise _invalid(
                "corpus_id",
                f"corpus_id must be the sha256 hex digest POST /v1/corpora returned, "
                f"got {quoted(corpus_id)}",
            )
        uploaded = settings["artifacts_root"] / "corpora" / f"{corpus_id}.txt"
        if lookups and not has_corpus(ctx["redis"], corpus_id, caller):
            raise corpus_not_found(corpus_id)
        try:
            return checked_corpus(settings, cached_corpus(settings, uploaded), "corpus_id")
        except ModelTrainerError as refused:
            # Whose upload it is is checked later (by the script); a refusal about the file
            # must not tell another user's upload from none.
            if not lookups and not has_corpus(ctx["redis"], corpus_id, caller):
                raise corpus_not_found(corpus_id) from refused
            raise
    if corpus_path is not None:
        root = settings["data_root"]
        return checked_corpus(
            settings, _confined(root / corpus_path, [root], "corpus_path"), "corpus_path"
        )
    return None


def corpus_not_found(corpus_id: str) -> ModelTrainerError:
    """Another user's upload is as unknown as one that never existed."""
    return ModelTrainerError(
        "CORPUS_NOT_FOUND", f"corpus {corpus_id} does not exist", details={"field": "corpus_id"}
    )


def checked_corpus(settings: Settings, path: Path, field: str) -> Path:
    """Presence, size and emptiness from one stat and a read that stops at the first text byte
    (remembered while the file's size, time and inode stay the same: corpora are submitted
    over and over)."""
    try:
        found = path.stat()
    except OSError:
        found = None
    if found is None or not stat.S_ISREG(found.st_mode):
        raise ModelTrainerError(
            "CORPUS_NOT_FOUND",
            f"corpus {path} does not exist",
            details={"field": field, "path": str(path)},
        )
    limit = settings["max_corpus_bytes"]
    if found.st_size > limit:
        raise ModelTrainerError(
            "CORPUS_TOO_LARGE",
            f"corpus {path} has {found.st_size} bytes; the limit is {limit}",
            details={"field": field, "path": str(path), "bytes": found.st_size},
        )
    if not _has_text(path, found.st_size, found.st_mtime_ns, found.st_ino):
        raise ModelTrainerError(
            "CORPUS_EMPTY",
            f"corpus {path} is empty or only whitespace",
            details={"field": field, "path": str(path)},
        )
    return path


@lru_cache(maxsize=1024)
def _has_text(path: Path, size: int, mtime_ns: int, inode: int) -> bool:
    """Keyed by the file's identity too, so a changed file is read again."""
    with path.open("rb") as source:
        while chunk := source.read(_READ_CHUNK):
            if chunk.strip():
                return True
    return False


def _training_corpus(settings: Settings, run_id: str, manifest: JSONObject) -> Path:
    """The corpus a run was trained on, as its manifest records it."""
    with unreadable_manifest(run_id):
        recorded = require_str(require_object(manifest, "config"), "corpus_path")
    confined = _confined(
        Path(local_corpus_path(settings, recorded)), corpus_roots(settings), "corpus_path"
    )
    return checked_corpus(settings, cached_corpus(settings, confined), "corpus_path")


def _text_file(settings: Settings, path: str, field: str) -> Path:
    """A text a job reads (score's path, generate's prompt_path): under DATA_ROOT and present."""
    root = settings["data_root"]
    confined = _confined(root / path, [root], field)
    if not confined.is_file():
        raise ModelTrainerError(
            "CORPUS_NOT_FOUND",
            f"{field} {confined} does not exist",
            details={"field": field, "path": str(confined)},
        )
    check_text_size(settings, confined.stat().st_size, field)
    return confined


def check_text_size(settings: Settings, size: int, field: str) -> None:
    """Score and generate answer a person waiting: their texts are held to MAX_TEXT_BYTES."""
    limit = settings["max_text_bytes"]
    if size > limit:
        raise ModelTrainerError(
            "REQUEST_TOO_LARGE",
            f"{field} has {size} bytes; the limit is {limit} (MAX_TEXT_BYTES)",
            details={"field": field, "bytes": size, "limit": limit},
        )


def check_step_tokens(settings: Settings, tokens: int) -> None:
    """One step's tokens (batch x window x accumulation) bound a worker's memory and step time."""
    limit = settings["max_tokens_per_step"]
    if tokens > limit:
        raise ModelTrainerError(
            "INVALID_CONFIG",
            f"batch_size x max_seq_len x grad_accum_steps is {tokens} tokens per step; "
            f"the limit is {limit} (MAX_TOKENS_PER_STEP)",
            details={"field": "batch_size", "tokens": tokens, "limit": limit},
        )


def check_processes(settings: Settings, processes: int) -> None:
    """Processes of one training share its worker's cores or GPUs: MAX_TRAIN_PROCESSES bounds
    them."""
    limit = settings["distributed"]["max_processes"]
    if processes > limit:
        raise ModelTrainerError(
            "INVALID_CONFIG",
            f"num_processes must be at most {limit} (MAX_TRAIN_PROCESSES), got {processes}",
            details={"field": "num_processes", "limit": limit},
        )


def check_fits_run(manifest: JSONObject, run_id: str, max_seq_len: int) -> None:
    """Windows a trained run's model takes: the preset's context (fine-tuned runs keep the
    checkpoint's, which the worker checks when it loads the model)."""
    with unreadable_manifest(run_id):
        fine_tuned = require_object(manifest, "config").get("init_from") is not None
        family = parse_model_family(require_str(manifest, "model_family"))
        size = require_str(manifest, "model_size")
    if not fine_tuned:
        check_fits_preset(family, size, max_seq_len)


def _confined(path: Path, roots: list[Path], field: str) -> Path:
    try:
        return confine(str(path), roots)
    except ModelTrainerError as exc:
        raise ModelTrainerError(
            exc.code, exc.message, details={**exc.details, "field": field}
        ) from exc


def checked_init_from(ctx: SubmitContext, caller: Principal, body: TrainJobRequest) -> str:
    """A fine-tuning checkpoint: gpt2 only, under DATA_ROOT or in one of the caller's runs,
    with a tokenizer of its vocab."""
    settings = ctx["settings"]
    if body.model_family != "gpt2":
        raise _invalid("init_from", "init_from is for model_family gpt2")
    if body.tokenizer_id is None:
        raise _invalid("tokenizer_id", "fine-tuning needs the checkpoint's tokenizer_id")
    requested = Path(str(body.init_from))
    candidate = requested if requested.is_absolute() else settings["data_root"] / requested
    directory = confine(str(candidate), [settings["data_root"], settings["artifacts_root"]])
    config_file = directory / "config.json"
    if directory.is_relative_to(settings["artifacts_root"]):
        fetch(settings, config_file)  # a run's, kept in the artifact store
    if not config_file.is_file() or not _may_fine_tune(ctx, caller, directory):
        raise ModelTrainerError(
            "MODEL_NOT_FOUND",
            f"no Hugging Face checkpoint in {body.init_from}",
            details={"field": "init_from"},
        )
    model_vocab = require_int(load_json_object(config_file.read_bytes()), "vocab_size")
    tokenizer_vocab = read_meta(fetch_tokenizer(body.tokenizer_id, settings))["vocab_size"]
    if model_vocab != tokenizer_vocab:
        raise ModelTrainerError(
            "MODEL_INCOMPATIBLE",
            f"tokenizer {body.tokenizer_id} has {tokenizer_vocab} tokens, "
            f"the checkpoint expects {model_vocab}",
            details={"field": "tokenizer_id"},
        )
    return str(directory)


def _may_fine_tune(ctx: SubmitContext, caller: Principal, directory: Path) -> bool:
    """Under ARTIFACTS_ROOT only the caller's own runs (`runs/{run_id}`) are checkpoints."""
    runs = ctx["settings"]["artifacts_root"] / "runs"
    if not directory.is_relative_to(ctx["settings"]["artifacts_root"]):
        return True
    if not directory.is_relative_to(runs) or directory == runs:
        return False
    run_id = directory.relative_to(runs).parts[0]
    return owns(ctx["redis"], "run", run_id, caller)


def checked_step(ctx: SubmitContext, run_id: str, step: int | None) -> int | None:
    """A checkpoint the (already owned) run still keeps, or None for its final model."""
    if step is not None:
        checkpoints = run_dir(ctx["settings"], run_id) / CHECKPOINTS_DIR
        fetch(ctx["settings"], checkpoints / checkpoint_name(step) / METRICS_FILE)
        find_checkpoint(checkpoints, step, run_id)
    return step


def parse_run_ref(ref: str, field: str) -> ParentRef:
    """`run_id@step` (a checkpoint) or `run_id` (the run's final model)."""
    run_id, at, step = ref.rpartition("@") if "@" in ref else (ref, "", "")
    if at and not (step.isascii() and step.isdigit() and int(step) <= L.MAX_STEPS):
        raise _invalid(field, f"{field} must be run_id or run_id@step, got {quoted(ref)}")
    return {"run_id": run_id, "step": int(step) if at else None}


def checked_parent(
    ctx: SubmitContext, caller: Principal, body: TrainJobRequest, ref: str
) -> tuple[ParentRef, str]:
    """The caller's finished run (or its checkpoint) a new run continues from, and the
    tokenizer it must keep: same family and size, so its weights fit the new model."""
    if body.init_from is not None:
        raise _invalid("continue_from", "give continue_from or init_from, not both")
    parent = parse_run_ref(ref, "continue_from")
    manifest = owned_manifest(ctx, caller, parent["run_id"])
    checked_step(ctx, parent["run_id"], parent["step"])
    with unreadable_manifest(parent["run_id"]):
        family = require_str(manifest, "model_family")
        size = require_str(manifest, "model_size")
        tokenizer_id = require_str(manifest, "tokenizer_id")
    if (family, size) != (body.model_family, body.model_size):
        raise ModelTrainerError(
            "MODEL_INCOMPATIBLE",
            f"run {parent['run_id']} is a {family}/{size} model; "
            f"continue it as {family}/{size}, not {body.model_family}/{body.model_size}",
            details={"field": "continue_from"},
        )
    if body.tokenizer_id is not None and body.tokenizer_id != tokenizer_id:
        raise _invalid(
            "tokenizer_id", f"run {parent['run_id']} uses tokenizer {tokenizer_id}; omit it"
        )
    return parent, tokenizer_id


def target_run(
    ctx: SubmitContext, caller: Principal, run_id: str | None, model: str | None, step: int | None
) -> tuple[str, int | None]:
    """The run (and checkpoint step) an inference job uses: its run_id (and the step asked
    for), or the registered version `model` names in the caller's registry (and its step)."""
    if model is None:
        if run_id is None:
            raise _invalid("run_id", "run_id or model is required")
        return run_id, step
    if run_id is not None:
        raise _invalid("model", "give run_id or model, not both")
    if step is not None:
        raise _invalid("step", "a model version names its own step; omit step")
    version = ModelStore(ctx["redis"]).resolve(caller["user_id"], model)
    step = version["step"]
    checkpoint = None if step is None else checkpoint_dir(ctx["settings"], version["run_id"], step)
    if checkpoint is not None and not stored(ctx["settings"], checkpoint / METRICS_FILE):
        raise ModelTrainerError(
            "MODEL_NOT_FOUND",
            f"model {model}: checkpoint {step} of run {version['run_id']} no longer exists",
            details={"field": "model", "run_id": version["run_id"], "step": step},
        )
    return version["run_id"], step


def owned_manifest(
    ctx: SubmitContext, caller: Principal, run_id: str, owned: bool | None = None
) -> JSONObject:
    """The caller's finished run; another user's is as unknown as one that never existed.
    `owned` when whose it is was read already (the API's event loop awaits that read)."""
    run_dir(ctx["settings"], run_id)  # the id's own check comes first
    if not (owns(ctx["redis"], "run", run_id, caller) if owned is None else owned):
        raise ModelTrainerError(
            "MODEL_NOT_FOUND",
            f"run {run_id} does not exist or has not finished training",
            details={"field": "run_id", "run_id": run_id},
        )
    return read_manifest(ctx["settings"], run_id)


def owned_tokenizer(ctx: SubmitContext, caller: Principal, tokenizer_id: str) -> None:
    require_tokenizer(tokenizer_id, ctx["settings"])
    if not owns(ctx["redis"], "tokenizer", tokenizer_id, caller):
        raise ModelTrainerError(
            "TOKENIZER_NOT_FOUND",
            f"tokenizer {tokenizer_id} does not exist",
            details={"field": "tokenizer_id"},
        )


def check_id_free(
    ctx: SubmitContext, caller: Principal, kind: Owned, name: str, *, exists: bool
) -> None:
    """A new job may name an id that is unclaimed and new, or already the caller's."""
    owner = owner_of(ctx["redis"], kind, name)
    taken = owner != caller["user_id"] if owner is not None else exists and not caller["admin"]
    if taken:
        raise id_taken(kind, name)


def id_taken(kind: Owned, name: str) -> ModelTrainerError:
    return _invalid(f"{kind}_id", f"{kind}_id {name} is taken; choose another")


def _invalid(field: str, message: str) -> ModelTrainerError:
    return ModelTrainerError("INVALID_CONFIG", message, details={"field": field})
