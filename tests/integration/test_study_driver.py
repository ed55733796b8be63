"""Advancing studies against a real redis-server (Optuna's journal included): trials are
submitted up to the study's parallelism, told to Optuna once when their jobs end, and an
interrupted advance (at any point) neither loses nor doubles a trial. Jobs are ended by
writing their records, as a worker would."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from optuna.trial import TrialState as OptunaState
from rq import Queue
from rq.serializers import JSONSerializer

from model_trainer.api import SubmitContext
from model_trainer.api.routes.studies import study_record
from model_trainer.api.schemas import ParamRequest, StudyRequest, TrainJobRequest
from model_trainer.api.study_spec import checked_spec
from model_trainer.api.submit import submit_train
from model_trainer.contracts.jobs import DOMAIN
from model_trainer.contracts.studies import (
    ParamSpec,
    PrunerKind,
    SamplerKind,
    StudyRecord,
    TrialRecord,
    TrialRef,
)
from model_trainer.settings import Settings
from model_trainer.storage.api_keys import CreatedKey, create_key, revoke_key
from model_trainer.storage.runs import utc_now
from model_trainer.storage.studies import StudyStore
from model_trainer.studies import driver
from model_trainer.studies.driver import advance, advance_due, submit_context
from model_trainer.studies.optuna_study import open_study
from model_trainer.studies.pruning import trial_pruner
from model_trainer.worker.train_job import run_train_job
from model_trainer.worker.worker_entry import maintain, make_worker
from platform_core.json_types import JSONObject
from platform_workers.keys import running_studies_key, study_lock_key
from platform_workers.redis_conn import RedisClient

LR = ParamRequest(name="learning_rate", type="float", low=1e-4, high=1e-2, log=True)


@pytest.fixture
def ctx(redis: RedisClient, redis_url: str, settings: Settings, corpus_path: Path) -> SubmitContext:
    """Submissions (and Optuna's journal) on this test's Redis; the corpus under DATA_ROOT."""
    assert corpus_path.is_file()
    return submit_context({**settings, "redis_url": redis_url}, redis)


@pytest.fixture
def owner(redis: RedisClient) -> CreatedKey:
    return create_key(redis, "alice")


BASE = TrainJobRequest(
    model_family="char_lstm",
    model_size="tiny",
    corpus_path="corpus.txt",
    max_seq_len=32,
    batch_size=8,
    max_steps=20,
    eval_every_steps=10,
    val_fraction=0.2,
)


def _study(
    ctx: SubmitContext,
    owner: CreatedKey,
    *,
    n_trials: int = 3,
    parallelism: int = 2,
    sampler: SamplerKind = "random",
    pruner: PrunerKind = "none",
    timeout_s: int | None = None,
) -> StudyRecord:
    body = StudyRequest(
        base=BASE,
        search_space=[LR],
        n_trials=n_trials,
        parallelism=parallelism,
        sampler=sampler,
        pruner=pruner,
        pruner_startup_trials=1,
        timeout_s=timeout_s,
    )
    record = study_record(owner, checked_spec(ctx, owner, body), timeout_s)
    StudyStore(ctx["redis"]).create(record)
    return record


def _trials(ctx: SubmitContext, study_id: str) -> list[TrialRecord]:
    return StudyStore(ctx["redis"]).trials(study_id)


def _states(ctx: SubmitContext, study_id: str) -> list[str]:
    return [trial["state"] for trial in _trials(ctx, study_id)]


def _complete(ctx: SubmitContext, job_id: str, result: JSONObject) -> None:
    ctx["jobs"].mark_running(job_id, now=utc_now())
    ctx["jobs"].complete(job_id, result=result, now=utc_now())


def _fail(ctx: SubmitContext, job_id: str, *, cancelled: bool = False) -> None:
    code = "TRAINING_CANCELLED" if cancelled else "TRAINING_NAN_LOSS"
    ctx["jobs"].fail(
        job_id,
        error={"code": code, "kind": "user", "message": "it stopped"},
        status="cancelled" if cancelled else "failed",
        now=utc_now(),
    )


def _optuna_states(ctx: SubmitContext, record: StudyRecord) -> list[OptunaState]:
    study = open_study(ctx["settings"], record)
    return [trial.state for trial in study.get_trials(deepcopy=False)]


def test_trials_run_up_to_the_parallelism_and_are_told_once_when_they_end(
    ctx: SubmitContext, owner: CreatedKey
) -> None:
    record = _study(ctx, owner, n_trials=4)
    study_id = record["study_id"]
    advance(ctx, study_id)
    first = _trials(ctx, study_id)
    assert [(t["number"], t["state"]) for t in first] == [(0, "running"), (1, "running")]
    train = Queue("train", connection=ctx["redis"], serializer=JSONSerializer)
    assert train.job_ids == [t["job_id"] for t in first]
    job = ctx["jobs"].get(first[0]["job_id"])
    assert job is not None
    assert job["origin"] == {"kind": "study", "id": study_id, "trial": 0}
    assert job["run_id"] == first[0]["run_id"] == f"{study_id}-trial-0"

    _complete(ctx, first[0]["job_id"], {"best_val_loss": 1.5, "val_loss": 1.6})
    _complete(ctx, first[1]["job_id"], {"val_loss": 2.5, "stop_reason": "pruned"})
    advance(ctx, study_id)
    advance(ctx, study_id)  # settled trials are told once
    assert _states(ctx, study_id) == ["complete", "pruned", "running", "running"]
    trials = _trials(ctx, study_id)
    assert (trials[0]["value"], trials[1]["value"]) == (1.5, 2.5)

    _fail(ctx, trials[2]["job_id"])
    _complete(ctx, trials[3]["job_id"], {"val_loss": None})
    ended = advance(ctx, study_id)
    assert ended is not None
    assert (ended["status"], ended["ended_by"]) == ("completed", "n_trials")
    trials = _trials(ctx, study_id)
    assert [t["state"] for t in trials] == ["complete", "pruned", "failed", "failed"]
    assert trials[2]["error"] == {"code": "TRAINING_NAN_LOSS", "message": "it stopped"}
    assert trials[3]["error"] is not None and trials[3]["error"]["code"] == "NO_VAL_LOSS"
    assert _optuna_states(ctx, record) == [
        OptunaState.COMPLETE,
        OptunaState.PRUNED,
        OptunaState.FAIL,
        OptunaState.FAIL,
    ]
    assert ctx["redis"].sismember(running_studies_key(DOMAIN), study_id) == 0


def test_an_interrupted_advance_neither_loses_nor_doubles_a_trial(
    ctx: SubmitContext, owner: CreatedKey
) -> None:
    record = _study(ctx, owner, n_trials=3, parallelism=1)
    study_id = record["study_id"]
    store = StudyStore(ctx["redis"])
    # Died between Optuna's ask and writing the trial: that trial never ran.
    open_study(ctx["settings"], record).ask()
    advance(ctx, study_id)
    (trial,) = _trials(ctx, study_id)
    assert trial["number"] == 1
    assert _optuna_states(ctx, record)[:1] == [OptunaState.FAIL]
    # Died after submitting, before recording it: found, not submitted again.
    store.put_trial(study_id, {**trial, "state": "waiting"})
    advance(ctx, study_id)
    assert _states(ctx, study_id) == ["running"]
    train = Queue("train", connection=ctx["redis"], serializer=JSONSerializer)
    assert train.count == 1
    # Died after recording a waiting trial, before submitting it: submitted now.
    _complete(ctx, trial["job_id"], {"best_val_loss": 1.0})
    advance(ctx, study_id)
    waiting = _trials(ctx, study_id)[-1]
    assert waiting["state"] == "running"
    ctx["jobs"].fail(
        waiting["job_id"],
        error={"code": "X", "kind": "system", "message": "lost"},
        status="failed",
        now=utc_now(),
    )
    ctx["redis"].delete(f"trainer:job:{waiting['job_id']}")
    store.put_trial(study_id, {**waiting, "state": "waiting"})
    advance(ctx, study_id)
    assert [t["state"] for t in _trials(ctx, study_id)] == ["complete", "running"]
    assert len({t["job_id"] for t in _trials(ctx, study_id)}) == 2


def test_a_full_quota_keeps_a_trial_waiting_until_there_is_room(
    ctx: SubmitContext, owner: CreatedKey
) -> None:
    limits = {**ctx["settings"]["max_active_jobs"], "train": 1}
    ctx = {**ctx, "settings": {**ctx["settings"], "max_active_jobs": limits}}
    other = submit_train(ctx, owner, BASE)
    record = _study(ctx, owner, n_trials=1, parallelism=1)
    advance(ctx, record["study_id"])
    assert _states(ctx, record["study_id"]) == ["waiting"]
    _fail(ctx, other["job_id"], cancelled=True)
    advance(ctx, record["study_id"])
    assert _states(ctx, record["study_id"]) == ["running"]


def test_a_revoked_key_fails_the_study(ctx: SubmitContext, owner: CreatedKey) -> None:
    record = _study(ctx, owner, n_trials=2, parallelism=1)
    revoke_key(ctx["redis"], owner["key_id"])
    ended = advance(ctx, record["study_id"])
    assert ended is not None
    assert (ended["status"], ended["ended_by"]) == ("failed", "refused")
    assert ended["error"] is not None and ended["error"]["code"] == "UNAUTHENTICATED"
    assert _states(ctx, record["study_id"]) == ["cancelled"]
    assert advance(ctx, record["study_id"]) == ended  # an ended study stays as it is


def test_a_trial_its_values_make_invalid_fails_alone(ctx: SubmitContext, owner: CreatedKey) -> None:
    record = _study(ctx, owner, n_trials=2, parallelism=1)
    bad: ParamSpec = {
        "name": "batch_size",
        "type": "int",
        "low": 0.0,
        "high": 0.0,
        "step": None,
        "log": False,
        "choices": None,
    }
    record = {**record, "spec": {**record["spec"], "search_space": [bad]}}
    ctx["redis"].set(f"trainer:study:{record['study_id']}", orjson.dumps(record))
    ended = advance(ctx, record["study_id"])
    assert ended is not None and ended["status"] == "completed"
    assert _states(ctx, record["study_id"]) == ["failed", "failed"]
    errors = [t["error"] for t in _trials(ctx, record["study_id"])]
    assert all(e is not None and e["code"] == "INVALID_CONFIG" for e in errors)


def test_a_study_past_its_deadline_asks_no_more_and_ends_timed_out(
    ctx: SubmitContext, owner: CreatedKey
) -> None:
    record = _study(ctx, owner, n_trials=5, parallelism=1, timeout_s=60)
    study_id = record["study_id"]
    advance(ctx, study_id)
    _complete(ctx, _trials(ctx, study_id)[0]["job_id"], {"best_val_loss": 1.0})
    advance(ctx, study_id)
    second = _trials(ctx, study_id)[1]
    past = {**record, "deadline": time.time() - 1}
    ctx["redis"].set(f"trainer:study:{study_id}", orjson.dumps(past))
    StudyStore(ctx["redis"]).put_trial(study_id, {**second, "state": "waiting"})
    ctx["redis"].delete(f"trainer:job:{second['job_id']}")
    ended = advance(ctx, study_id)
    assert ended is not None
    assert (ended["status"], ended["ended_by"]) == ("completed", "timeout")
    assert _states(ctx, study_id) == ["complete", "cancelled"]


def test_a_corpus_gone_mid_study_fails_it(ctx: SubmitContext, owner: CreatedKey) -> None:
    record = _study(ctx, owner, n_trials=3, parallelism=1)
    study_id = record["study_id"]
    advance(ctx, study_id)
    _complete(ctx, _trials(ctx, study_id)[0]["job_id"], {"best_val_loss": 1.0})
    (ctx["settings"]["data_root"] / "corpus.txt").unlink()
    ended = advance(ctx, study_id)
    assert ended is not None
    assert (ended["status"], ended["ended_by"]) == ("failed", "refused")
    assert ended["error"] is not None and ended["error"]["code"] == "CORPUS_NOT_FOUND"
    assert _states(ctx, study_id) == ["complete", "cancelled"]


def test_a_trial_told_before_an_interruption_is_not_told_again(
    ctx: SubmitContext, owner: CreatedKey
) -> None:
    record = _study(ctx, owner, n_trials=2, parallelism=2)
    study_id = record["study_id"]
    advance(ctx, study_id)
    first, second = _trials(ctx, study_id)
    _complete(ctx, first["job_id"], {"best_val_loss": 1.0})
    open_study(ctx["settings"], record).tell(0, 1.0)  # told, then the process died
    _fail(ctx, second["job_id"], cancelled=True)
    ended = advance(ctx, study_id)
    assert ended is not None and ended["status"] == "completed"
    assert _states(ctx, study_id) == ["complete", "cancelled"]
    assert _optuna_states(ctx, record) == [OptunaState.COMPLETE, OptunaState.FAIL]


def test_a_completed_job_without_a_result_fails_its_trial(
    ctx: SubmitContext, owner: CreatedKey
) -> None:
    record = _study(ctx, owner, n_trials=1, parallelism=1)
    advance(ctx, record["study_id"])
    (trial,) = _trials(ctx, record["study_id"])
    ctx["redis"].hset(f"trainer:job:{trial['job_id']}", "status", "completed")
    advance(ctx, record["study_id"])
    (trial,) = _trials(ctx, record["study_id"])
    assert trial["state"] == "failed"
    assert trial["error"] == {"code": "NO_RESULT", "message": "it ended without a result"}


def test_a_busy_study_is_left_to_whoever_holds_it(
    ctx: SubmitContext, owner: CreatedKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = _study(ctx, owner)
    monkeypatch.setattr(driver, "LOCK_WAIT_S", 0.1)
    held = ctx["redis"].lock(study_lock_key(DOMAIN, record["study_id"]), timeout=10)
    assert held.acquire()
    assert advance(ctx, record["study_id"]) == record
    assert _trials(ctx, record["study_id"]) == []
    held.release()
    assert advance(ctx, "study-000000000000") is None


def test_a_lock_that_expired_mid_advance_is_logged(
    ctx: SubmitContext,
    owner: CreatedKey,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    record = _study(ctx, owner)

    def slow(ctx: SubmitContext, study_id: str) -> StudyRecord | None:
        ctx["redis"].delete(study_lock_key(DOMAIN, study_id))
        return None

    monkeypatch.setattr(driver, "_advance", slow)
    assert advance(ctx, record["study_id"]) is None
    assert "lock expired" in caplog.text


def test_maintenance_advances_only_studies_with_something_to_do(
    ctx: SubmitContext, owner: CreatedKey
) -> None:
    record = _study(ctx, owner, n_trials=2, parallelism=2)
    study_id = record["study_id"]
    assert advance_due(ctx) == [study_id]  # room for trials
    assert advance_due(ctx) == []  # both running, nothing ended
    trials = _trials(ctx, study_id)
    ctx["jobs"].mark_running(trials[0]["job_id"], now=utc_now())
    assert advance_due(ctx) == []
    _complete(ctx, trials[0]["job_id"], {"best_val_loss": 1.0})
    assert advance_due(ctx) == [study_id]  # a trial to settle
    StudyStore(ctx["redis"]).put_trial(study_id, {**trials[1], "state": "waiting"})
    assert advance_due(ctx) == [study_id]  # a trial to submit
    _complete(ctx, trials[1]["job_id"], {"best_val_loss": 2.0})
    assert advance_due(ctx) == [study_id]
    assert StudyStore(ctx["redis"]).running() == []
    # A stale member of the running set (its study ended) is skipped.
    ctx["redis"].sadd(running_studies_key(DOMAIN), study_id, "study-gone00000000")
    assert advance_due(ctx) == []


def test_a_trial_reports_val_losses_and_the_median_pruner_stops_a_worse_one(
    ctx: SubmitContext, owner: CreatedKey, caplog: pytest.LogCaptureFixture
) -> None:
    record = _study(ctx, owner, n_trials=3, parallelism=2, pruner="median")
    study_id = record["study_id"]
    advance(ctx, study_id)
    first, _ = _trials(ctx, study_id)
    good = trial_pruner(ctx["settings"], ctx["redis"], {"study_id": study_id, "number": 0})
    bad = trial_pruner(ctx["settings"], ctx["redis"], {"study_id": study_id, "number": 1})
    assert good is not None and bad is not None
    assert good(10, 2.0) is False
    assert good(20, 1.5) is False
    _complete(ctx, first["job_id"], {"best_val_loss": 1.5})
    advance(ctx, study_id)
    assert bad(10, 2.5) is True  # worse than the finished trial's 2.0 at step 10
    assert good(30, 1.0) is False  # a finished trial's report is refused, and logged
    assert "not reported" in caplog.text
    assert trial_pruner(ctx["settings"], ctx["redis"], {"study_id": "nope", "number": 0}) is None


def test_an_ended_study_takes_no_reports(ctx: SubmitContext, owner: CreatedKey) -> None:
    record = _study(ctx, owner, n_trials=1, parallelism=1)
    StudyStore(ctx["redis"]).end(record, "cancelled", "cancelled", now=utc_now())
    ref: TrialRef = {"study_id": record["study_id"], "number": 0}
    assert trial_pruner(ctx["settings"], ctx["redis"], ref) is None


def test_grid_and_tpe_studies_propose_distinct_values(
    ctx: SubmitContext, owner: CreatedKey
) -> None:
    for sampler in ("grid", "tpe"):
        body = StudyRequest(
            base=BASE,
            search_space=[
                ParamRequest(name="batch_size", type="int", low=4, high=8, step=2),
                ParamRequest(name="lr_schedule", type="categorical", choices=["cosine"]),
            ],
            n_trials=3,
            parallelism=3,
            sampler=sampler,
        )
        record = study_record(owner, checked_spec(ctx, owner, body), None)
        StudyStore(ctx["redis"]).create(record)
        advance(ctx, record["study_id"])
        trials = _trials(ctx, record["study_id"])
        _complete(ctx, trials[0]["job_id"], {"best_val_loss": 1.0})
        advance(ctx, record["study_id"])
        values = {t["params"]["batch_size"] for t in trials}
        assert values <= {4, 6, 8}
        if sampler == "grid":
            assert values == {4, 6, 8}


def test_a_trial_job_reports_to_its_study_and_lets_it_go_on(
    ctx: SubmitContext,
    owner: CreatedKey,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The real train job: its val losses reach Optuna, and its end submits the next trial;
    a trial of an ended study trains unreported, and a failed advance is only logged."""
    record = _study(ctx, owner, n_trials=3, parallelism=1, pruner="median")
    study_id = record["study_id"]
    advance(ctx, study_id)
    train = Queue("train", connection=ctx["redis"], serializer=JSONSerializer)

    def run_next() -> None:
        job = train.jobs[-1]
        train.remove(job)
        run_train_job(job.args[0], settings=ctx["settings"], redis=ctx["redis"])

    run_next()
    first, second = _trials(ctx, study_id)
    assert (first["state"], second["state"]) == ("complete", "running")
    (told,) = [t for t in open_study(ctx["settings"], record).get_trials() if t.number == 0]
    assert sorted(told.intermediate_values) == [10, 20]
    assert first["value"] == min(told.intermediate_values.values())

    monkeypatch.setattr(driver, "advance", _broken_advance)
    run_next()
    assert "not advanced after trial" in caplog.text
    monkeypatch.undo()
    assert _states(ctx, study_id) == ["complete", "running"]  # maintenance will settle it
    advance(ctx, study_id)
    StudyStore(ctx["redis"]).end(
        StudyStore(ctx["redis"]).require(study_id, owner["user_id"]),
        "cancelled",
        "cancelled",
        now=utc_now(),
    )
    run_next()  # its study ended: it trains, reporting nothing
    third = ctx["jobs"].get(_trials(ctx, study_id)[2]["job_id"])
    assert third is not None and third["status"] == "completed"


def _broken_advance(ctx: SubmitContext, study_id: str) -> StudyRecord | None:
    raise RuntimeError(f"cannot advance {study_id}")


def test_a_workers_maintenance_round_advances_running_studies(
    ctx: SubmitContext, owner: CreatedKey
) -> None:
    worker = make_worker("train", ctx["redis"])
    maintain(worker, ctx["settings"])  # no study: Optuna stays unimported here
    record = _study(ctx, owner, n_trials=1, parallelism=1)
    maintain(worker, ctx["settings"])
    assert _states(ctx, record["study_id"]) == ["running"]
