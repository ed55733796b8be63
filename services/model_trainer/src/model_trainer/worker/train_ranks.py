"""A train job's processes (`num_processes` > 1), launched by PyTorch's elastic launcher.

`elastic_launch` is the machinery behind `torchrun`: the job's process becomes the agent that
starts the ranks, meets the other machines' agents at the rendezvous endpoint (DDP_NNODES,
DDP_RDZV_ENDPOINT; by default this machine alone on a free port of 127.0.0.1) and, when any rank
dies, stops the others (no restarts: a training resumes from its checkpoint through RQ's retry
instead). Rank 0 reports to Redis, checkpoints and saves the run exactly as a one-process
training does; the other ranks only compute. Each rank returns its outcome or its coded error
as JSON; the job's process reads them back.
"""

from __future__ import annotations

import tempfile

import orjson
from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.elastic.rendezvous.api import RendezvousError
from torch.distributed.launcher.api import LaunchConfig, elastic_launch

from model_trainer.backends.registry import get_backend
from model_trainer.contracts.jobs import QUEUE_FOR_TYPE, TrainJobPayload
from model_trainer.contracts.model import TrainingCallbacks, TrainOutcome
from model_trainer.errors import ERRORS, ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.corpora import read_corpus
from model_trainer.storage.provenance import decode_train_outcome
from model_trainer.storage.runs import run_dir
from model_trainer.tokenizers.store import load_tokenizer
from model_trainer.training import distributed
from model_trainer.training.device import resolve_device
from model_trainer.worker.job_utils import coded_failure, job_context
from model_trainer.worker.preemption import ShutdownWatch, die_with_worker
from model_trainer.worker.train_job import train_here
from platform_core.json_types import (
    load_json_object,
    optional_object,
    require_literal,
    require_object,
    require_str,
)
from platform_workers.redis_conn import redis_from_url

# How often the agent looks at its ranks: a dead one stops the others within this.
MONITOR_INTERVAL_S = 0.5

# The ranks besides 0 report nothing: rank 0 speaks for all.
QUIET: TrainingCallbacks = {
    "heartbeat": lambda now: None,
    "cancelled": lambda: False,
    "progress": None,
    "alert": None,
    "prune": None,
}


def train_in_ranks(payload: TrainJobPayload, settings: Settings, tokenizer_id: str) -> TrainOutcome:
    """Launch the ranks, wait for them, and return rank 0's outcome (or raise the coded error
    that ended them). Every rank loads the tokenizer the job's process stored."""
    ddp, processes = settings["distributed"], payload["config"]["num_processes"]
    with tempfile.TemporaryDirectory(prefix="ranks-") as logs:
        config = LaunchConfig(
            min_nodes=ddp["nnodes"],
            max_nodes=ddp["nnodes"],
            nproc_per_node=processes,
            run_id=payload["job_id"],
            rdzv_backend="c10d",
            rdzv_endpoint=ddp["rdzv_endpoint"] or "127.0.0.1:0",
            # How long the store is waited for, and the machines for each other.
            rdzv_timeout=ddp["timeout_s"],
            rdzv_configs={"join_timeout": ddp["timeout_s"]},
            max_restarts=0,
            monitor_interval=MONITOR_INTERVAL_S,
            logs_specs=DefaultLogsSpecs(log_dir=logs),
        )
        try:
            results = elastic_launch(config, train_rank)(payload, settings, tokenizer_id)
        except ChildFailedError as failed:
            rank, failure = failed.get_first_failure()
            raise ModelTrainerError(
                "TRAINING_PROCESS_FAILED",
                f"process {rank} of {processes} failed (exit code {failure.exitcode}); "
                "the others were stopped",
                details={"rank": rank, "exitcode": failure.exitcode},
            ) from failed
        except RendezvousError as unmet:
            raise ModelTrainerError(
                "TRAINING_PROCESS_FAILED",
                f"the {ddp['nnodes']} machines of this training did not all meet at "
                f"{config.rdzv_endpoint} within DDP_TIMEOUT_S ({ddp['timeout_s']} s): {unmet}",
                details={"nnodes": ddp["nnodes"], "rdzv_endpoint": config.rdzv_endpoint},
            ) from unmet
    return _outcome([str(results[rank]) for rank in sorted(results)])


def train_rank(payload: TrainJobPayload, settings: Settings, tokenizer_id: str) -> str:
    """One rank, in its own process (spawned: its arguments come from the job's process, not
    from Redis): join the group, train, leave it however training ends."""
    die_with_worker()
    device = resolve_device(payload["config"]["device"])
    distributed.share_cores(device)
    distributed.join_group(device, float(settings["distributed"]["timeout_s"]))
    try:
        outcome = _train_rank(payload, settings, tokenizer_id)
        return orjson.dumps({"outcome": outcome}).decode()
    except Exception as error:
        coded = coded_failure(error)
        failure = {"code": coded.code, "message": coded.message, "details": coded.details}
        return orjson.dumps({"error": failure}).decode()
    finally:
        distributed.leave_group()


def _train_rank(payload: TrainJobPayload, settings: Settings, tokenizer_id: str) -> TrainOutcome:
    cfg = payload["config"]
    corpus = read_corpus(cfg["corpus_path"], settings)
    tokenizer = load_tokenizer(tokenizer_id, settings)
    backend = get_backend(cfg["model_family"])
    prepared = backend.prepare(cfg, settings, tokenizer=tokenizer)
    if distributed.rank() == 0:
        redis = redis_from_url(settings["redis_url"])
        ctx = job_context(
            redis,
            job_id=payload["job_id"],
            user_id=payload["user_id"],
            queue=QUEUE_FOR_TYPE["train"],
        )
        shutdown = ShutdownWatch.for_this_horse(redis)
        return train_here(payload, settings, redis, ctx, shutdown, corpus=corpus, prepared=prepared)
    return backend.train(
        cfg,
        settings,
        corpus=corpus,
        run_dir=str(run_dir(settings, payload["run_id"])),
        prepared=prepared,
        callbacks=QUIET,
    )


def _outcome(results: list[str]) -> TrainOutcome:
    """Rank 0's outcome; when ranks failed, the error that says most: a coded one over an
    internal one (a rank whose peer failed first sees only a broken connection), then the
    lowest rank's."""
    decoded = [load_json_object(result) for result in results]
    errors = [error for result in decoded if (error := optional_object(result, "error"))]
    if not errors:
        return decode_train_outcome(require_object(decoded[0], "outcome"))
    errors.sort(key=lambda error: require_str(error, "code") == "INTERNAL_ERROR")
    first = errors[0]
    raise ModelTrainerError(
        require_literal(first, "code", tuple(ERRORS)),
        require_str(first, "message"),
        details=require_object(first, "details"),
    )
