"""process_train_job: train a model for a run, reporting progress and metrics as events."""

from __future__ import annotations

import logging
from collections.abc import Callable

from model_trainer.backends.causal_lm import num_params
from model_trainer.backends.registry import get_backend
from model_trainer.contracts.jobs import QUEUE_FOR_TYPE, TrainJobPayload
from model_trainer.contracts.model import (
    PreparedLMModel,
    StepMetrics,
    TrainingAlert,
    TrainingCallbacks,
    TrainOutcome,
    ValidationMetrics,
)
from model_trainer.contracts.studies import TrialRef
from model_trainer.contracts.tokenizer import TokenizerHandle
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.corpora import Corpus, read_corpus
from model_trainer.storage.job_store import JobStore
from model_trainer.storage.runs import run_dir
from model_trainer.tokenizers.char import CharTokenizer
from model_trainer.tokenizers.store import load_tokenizer, save_tokenizer
from model_trainer.worker.job_utils import (
    connect,
    job_context,
    patiently,
    run_job,
    through_outage,
    to_json_object,
)
from model_trainer.worker.preemption import ShutdownWatch, die_with_worker
from model_trainer.worker.rq_meta import show_in_rq
from platform_core.json_types import JSONObject
from platform_core.trainer_metrics_events import (
    TrainerProgressMetricsV1,
    make_alert_event,
    make_completed_metrics_event,
    make_config_event,
    make_progress_metrics_event,
)
from platform_workers.job_context import JobContext
from platform_workers.redis_conn import RedisClient

logger = logging.getLogger(__name__)


def process_train_job(payload: TrainJobPayload) -> JSONObject:
    """RQ entry point (enqueued by dotted path; runs in a freshly spawned work horse)."""
    die_with_worker()
    settings, redis = connect()
    return run_train_job(payload, settings=settings, redis=redis)


def run_train_job(
    payload: TrainJobPayload, *, settings: Settings, redis: RedisClient
) -> JSONObject:
    job_id, user_id = payload["job_id"], payload["user_id"]
    ctx = job_context(redis, job_id=job_id, user_id=user_id, queue=QUEUE_FOR_TYPE["train"])
    store = JobStore(redis)
    shutdown = ShutdownWatch.for_this_horse(redis)
    try:
        return run_job(
            ctx,
            store,
            job_id,
            lambda: _train(payload, settings, redis, ctx, shutdown),
            job_type="train",
            config=payload.get("config"),
        )
    finally:
        trial = payload.get("trial")
        if trial is not None:
            _next_trials(settings, redis, trial)


def _next_trials(settings: Settings, redis: RedisClient, trial: TrialRef) -> None:
    """A trial that ended (its record already says how) lets its study go on at once. Should
    this fail, workers' maintenance advances the study a few seconds later."""
    from model_trainer.studies.driver import advance, submit_context

    try:
        through_outage(lambda: advance(submit_context(settings, redis), trial["study_id"]), None)
    except Exception:
        logger.exception("study %s: not advanced after trial %s", *trial.values())


def _train(
    payload: TrainJobPayload,
    settings: Settings,
    redis: RedisClient,
    ctx: JobContext,
    shutdown: ShutdownWatch,
) -> JSONObject:
    cfg = payload["config"]
    corpus = read_corpus(cfg["corpus_path"], settings)
    tokenizer = _tokenizer(payload["tokenizer_id"], corpus, settings)
    prepared = get_backend(cfg["model_family"]).prepare(cfg, settings, tokenizer=tokenizer)
    _announce_config(payload, prepared, ctx)
    directory = run_dir(settings, payload["run_id"])
    if cfg["num_processes"] > 1:
        from model_trainer.worker.train_ranks import train_in_ranks

        outcome = train_in_ranks(payload, settings, tokenizer.tokenizer_id)
    else:
        outcome = train_here(
            payload, settings, redis, ctx, shutdown, corpus=corpus, prepared=prepared
        )
    patiently(
        lambda: ctx.publish_metrics(
            make_completed_metrics_event(
                job_id=payload["job_id"],
                user_id=payload["user_id"],
                loss=outcome["loss"],
                perplexity=outcome["perplexity"],
                artifact_path=str(directory),
                val_loss=outcome["val_loss"],
                val_perplexity=outcome["val_perplexity"],
                steps=outcome["steps"],
                elapsed_s=outcome["elapsed_s"],
                stop_reason=outcome["stop_reason"],
                best_val_loss=outcome["best_val_loss"],
                best_step=outcome["best_step"],
            )
        )
    )
    return {"run_id": payload["run_id"], **to_json_object(outcome)}


def train_here(
    payload: TrainJobPayload,
    settings: Settings,
    redis: RedisClient,
    ctx: JobContext,
    shutdown: ShutdownWatch,
    *,
    corpus: Corpus,
    prepared: PreparedLMModel,
) -> TrainOutcome:
    """Train in this process (the job's, or rank 0 of several), reporting to Redis."""
    cfg, store = payload["config"], JobStore(redis)
    # A Redis outage must not stop the training: heartbeats and progress resume when it is back.
    # A cancel or a worker shutdown stops it at the next step, after a checkpoint.
    callbacks: TrainingCallbacks = {
        "heartbeat": lambda now: through_outage(lambda: ctx.heartbeat(now), None),
        "cancelled": lambda: (
            through_outage(ctx.cancelled, False) or through_outage(shutdown.requested, False)
        ),
        "progress": lambda metrics: through_outage(
            lambda: _report_progress(payload, metrics, ctx, store), None
        ),
        "evaluated": lambda metrics: through_outage(
            lambda: _report_validation(payload, metrics, ctx), None
        ),
        "alert": lambda alert: through_outage(lambda: _report_alert(payload, alert, ctx), None),
        "prune": _prune_check(payload, settings, redis),
    }
    try:
        return get_backend(cfg["model_family"]).train(
            cfg,
            settings,
            corpus=corpus,
            run_dir=str(run_dir(settings, payload["run_id"])),
            prepared=prepared,
            callbacks=callbacks,
        )
    except ModelTrainerError as error:
        if error.code == "TRAINING_CANCELLED" and shutdown.seen:
            raise ModelTrainerError(
                "TRAINING_PREEMPTED",
                f"worker shutting down: {error.message}, checkpointed; back in the queue",
            ) from error
        raise


def _prune_check(
    payload: TrainJobPayload, settings: Settings, redis: RedisClient
) -> Callable[[int, float], bool] | None:
    """A trial reports each val loss to its study and stops once its pruner says so; a Redis
    outage skips a report and lets the trial go on. (Optuna is imported only by trials, so
    other trainings start no slower.)"""
    trial = payload.get("trial")
    if trial is None:
        return None
    from model_trainer.studies.pruning import trial_pruner

    check = through_outage(lambda: trial_pruner(settings, redis, trial), None)
    if check is None:
        return None
    return lambda step, val_loss: through_outage(lambda: check(step, val_loss), False)


def _tokenizer(tokenizer_id: str | None, corpus: Corpus, settings: Settings) -> TokenizerHandle:
    """The stored tokenizer asked for, or the corpus's own character tokenizer, stored too so
    that every run's tokenizer_id can be loaded (it is named by the corpus's digest)."""
    if tokenizer_id is not None:
        return load_tokenizer(tokenizer_id, settings)
    tokenizer = CharTokenizer.build(corpus["text"], f"char-{corpus['sha256'][:16]}")
    save_tokenizer(tokenizer, settings)
    return tokenizer


def _announce_config(payload: TrainJobPayload, prepared: PreparedLMModel, ctx: JobContext) -> None:
    cfg = payload["config"]
    ctx.publish_metrics(
        make_config_event(
            job_id=payload["job_id"],
            user_id=payload["user_id"],
            model_family=cfg["model_family"],
            model_size=cfg["model_size"],
            total_epochs=cfg["num_epochs"],
            queue=QUEUE_FOR_TYPE["train"],
            device=cfg["device"],
            batch_size=cfg["batch_size"],
            learning_rate=cfg["learning_rate"],
            max_seq_len=cfg["max_seq_len"],
            num_params=num_params(prepared["model"]),
        )
    )


def _report_progress(
    payload: TrainJobPayload, metrics: StepMetrics, ctx: JobContext, store: JobStore
) -> None:
    """Called at log intervals; the context's time throttle decides what reaches Redis."""
    fraction = metrics["step"] / metrics["total_steps"]
    message = f"step {metrics['step']}/{metrics['total_steps']} loss {metrics['loss']:.4f}"
    if not ctx.publish_progress(fraction, message, force=metrics["step"] == metrics["total_steps"]):
        return
    store.set_progress(payload["job_id"], fraction, message)
    show_in_rq(
        payload["job_id"],
        {
            "progress": fraction,
            "message": message,
            "step": metrics["step"],
            "total_steps": metrics["total_steps"],
            "loss": metrics["loss"],
            "tokens_per_second": metrics["tokens_per_second"],
        },
    )
    ctx.publish_metrics(_progress_event(payload, metrics))


def _report_validation(
    payload: TrainJobPayload, metrics: ValidationMetrics, ctx: JobContext
) -> None:
    """Validations are rare (per epoch or eval_every_steps), so each is published: a progress
    metrics event that also carries val_loss, for followers to chart live."""
    ctx.publish_metrics(_progress_event(payload, metrics, metrics["val_loss"]))


def _progress_event(
    payload: TrainJobPayload, metrics: StepMetrics, val_loss: float | None = None
) -> TrainerProgressMetricsV1:
    """A report as a trainer.metrics.progress.v1 event."""
    return make_progress_metrics_event(
        job_id=payload["job_id"],
        user_id=payload["user_id"],
        epoch=metrics["epoch"],
        total_epochs=payload["config"]["num_epochs"],
        step=metrics["step"],
        loss=metrics["loss"],
        total_steps=metrics["total_steps"],
        val_loss=val_loss,
        learning_rate=metrics["learning_rate"],
        tokens_per_second=metrics["tokens_per_second"],
        grad_norm=metrics["grad_norm"],
    )


def _report_alert(payload: TrainJobPayload, alert: TrainingAlert, ctx: JobContext) -> None:
    """Alerts are rare (raised once per crossing), so each is published, never throttled."""
    ctx.publish_metrics(
        make_alert_event(
            job_id=payload["job_id"],
            user_id=payload["user_id"],
            kind=alert["kind"],
            step=alert["step"],
            value=alert["value"],
            threshold=alert["threshold"],
            message=alert["message"],
        )
    )
