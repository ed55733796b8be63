"""A study's Optuna side: its journal in Redis, and the sampler, pruner and distributions its
spec names. Every process that touches a study (the one advancing it, a trial reporting a val
loss) rebuilds these from the spec, so nothing but the journal has to be shared."""

from __future__ import annotations

from collections.abc import Sequence

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.pruners import BasePruner, MedianPruner, NopPruner
from optuna.samplers import BaseSampler, GridSampler, RandomSampler, TPESampler
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalRedisBackend
from optuna.trial import FrozenTrial, TrialState

from model_trainer.contracts.jobs import DOMAIN
from model_trainer.contracts.studies import Choice, ParamSpec, StudyRecord, StudySpec, grid_values
from model_trainer.settings import Settings
from platform_workers.keys import optuna_prefix
from platform_workers.redis_conn import RedisClient, redis_from_url

optuna.logging.set_verbosity(optuna.logging.WARNING)

_SEED_SPACE = 2**32


class RedisJournal(JournalRedisBackend):
    """Optuna's Redis journal over a client of ours: Optuna's own `Redis.from_url` would know
    neither Sentinel URLs nor our retries (Optuna marks this backend experimental; it has kept
    its interface since 3.1)."""

    def __init__(self, redis: RedisClient, prefix: str) -> None:
        self._redis = redis
        self._use_cluster = False
        self._prefix = prefix


def journal(settings: Settings, study_id: str) -> JournalStorage:
    """The study's journal in Redis."""
    return JournalStorage(
        RedisJournal(redis_from_url(settings["redis_url"]), optuna_prefix(DOMAIN, study_id))
    )


def open_study(settings: Settings, record: StudyRecord, *, salt: int = 0) -> optuna.Study:
    """The study's Optuna study, created on first use.

    `salt` (how many trials it has) varies a random or TPE sampler's seed: rebuilt with the
    same seed for every batch of asks, it would propose the same values again.
    """
    spec = record["spec"]
    return optuna.create_study(
        study_name=record["study_id"],
        storage=journal(settings, record["study_id"]),
        sampler=sampler(spec, salt),
        pruner=pruner(spec),
        direction="minimize",
        load_if_exists=True,
    )


def sampler(spec: StudySpec, salt: int) -> BaseSampler:
    if spec["sampler"] == "grid":
        # Its seed orders the grid, which must stay the same for the whole study; it picks a
        # point by trial number, or among the points no trial has taken.
        return AskTellGrid(grid(spec), seed=spec["seed"])
    seed = (spec["seed"] * 1_000_003 + salt) % _SEED_SPACE
    if spec["sampler"] == "random":
        return RandomSampler(seed=seed)
    # Trials run side by side: constant_liar keeps TPE from proposing the running ones again.
    return TPESampler(seed=seed, constant_liar=True)


class AskTellGrid(GridSampler):
    """Grid search for ask-and-tell: Optuna's stops `optimize()` once the grid is covered, and
    fails outside it; a study here stops at n_trials, which the API keeps within the grid."""

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        del study, trial, state, values


def grid(spec: StudySpec) -> dict[str, list[Choice]]:
    """Grid search's space (the API refuses float ranges for it, so each has values)."""
    return {param["name"]: grid_values(param) or [] for param in spec["search_space"]}


def pruner(spec: StudySpec) -> BasePruner:
    if spec["pruner"] == "none":
        return NopPruner()
    return MedianPruner(
        n_startup_trials=spec["pruner_startup_trials"],
        n_warmup_steps=spec["pruner_warmup_steps"],
    )


def distributions(spec: StudySpec) -> dict[str, BaseDistribution]:
    return {param["name"]: distribution(param) for param in spec["search_space"]}


def distribution(param: ParamSpec) -> BaseDistribution:
    low, high, step = param["low"], param["high"], param["step"]
    if param["choices"] is not None or low is None or high is None:
        return CategoricalDistribution(param["choices"] or [])
    if param["type"] == "int":
        return IntDistribution(int(low), int(high), log=param["log"], step=int(step or 1))
    return FloatDistribution(low, high, log=param["log"], step=step)
