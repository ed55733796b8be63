"""A trial's side of pruning: report each val loss to the study, and ask whether to stop.

Runs inside the trial's train job. The pruner is rebuilt from the study's spec and judges the
trial against the other trials' reports in the study's journal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import optuna

from model_trainer.contracts.studies import TrialRef
from model_trainer.settings import Settings
from model_trainer.storage.studies import StudyStore
from model_trainer.studies.optuna_study import journal, open_study
from platform_workers.redis_conn import RedisClient

logger = logging.getLogger(__name__)

# `(step, val_loss) -> stop?`: the loop's prune callback.
PruneCheck = Callable[[int, float], bool]


def trial_pruner(settings: Settings, redis: RedisClient, ref: TrialRef) -> PruneCheck | None:
    """The trial's prune check, or None when its study is gone or over (nothing to report to)."""
    record = StudyStore(redis).get(ref["study_id"])
    if record is None or record["status"] != "running":
        return None
    study = open_study(settings, record)
    storage = journal(settings, ref["study_id"])
    trial_id = storage.get_trial_id_from_study_id_trial_number(
        storage.get_study_id_from_name(ref["study_id"]), ref["number"]
    )
    trial = optuna.trial.Trial(study, trial_id)

    def check(step: int, val_loss: float) -> bool:
        """Report, then ask the pruner. A trial Optuna no longer has running (its study ended)
        goes on untouched: its job's cancel flag is what stops it then."""
        try:
            trial.report(val_loss, step)
            return bool(trial.should_prune())  # Optuna answers a numpy bool
        except (RuntimeError, ValueError) as error:
            logger.warning("trial %s: not reported: %s", ref["number"], error)
            return False

    return check
