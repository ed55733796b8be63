"""`model-trainer scheduler`: RQ's CronScheduler, firing our schedules.

RQ keeps what it already does: registration and heartbeat (`rq:cron_scheduler:*`, what RQ's
cron monitoring lists), signal handling, the start loop, and CronJob's timing. Two things
differ. Its cron jobs are synced from the schedule records on every pass (new, paused, resumed,
deleted, fired by another scheduler), re-read only when the schedules' version moved. And a due
one is fired through the submit path (firing.fire) instead of CronJob.enqueue, which enqueues
with RQ's default pickle serializer; our workers take JSON only. The loop wakes at least every
SYNC_S, so a new or resumed schedule is seen within that.

A Redis outage is waited out: the pass that meets it fires nothing, and the slots it missed are
fired once it is back, by the missed-firing rule (timing.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import NamedTuple

from rq.cron import CronJob, CronScheduler

from model_trainer.api import SubmitContext
from model_trainer.scheduler.firing import REDIS_AWAY, fire
from model_trainer.scheduler.timing import cron_job
from model_trainer.settings import Settings
from model_trainer.storage.job_store import JobStore
from model_trainer.storage.schedules import ScheduleRecord, ScheduleStore
from platform_workers.redis_conn import redis_from_url

SYNC_S = 1.0


class _Entry(NamedTuple):
    record: ScheduleRecord
    job: CronJob


def _timing(record: ScheduleRecord) -> tuple[str | None, int | None, str, str | None]:
    """What a schedule's CronJob is built from."""
    return record["cron"], record["interval_s"], record["created_at"], record["last_fired_at"]


def utc_now() -> datetime:
    return datetime.now(UTC)


class ScheduleScheduler(CronScheduler):
    def __init__(
        self, ctx: SubmitContext, *, clock: Callable[[], datetime] = utc_now, name: str = ""
    ) -> None:
        super().__init__(connection=ctx["redis"], name=name)
        self._ctx = ctx
        self._store = ScheduleStore(ctx["redis"])
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._synced: int | None = None

    def sync(self) -> None:
        """One CronJob per active schedule, rebuilt only when what it is built from changed."""
        version = self._store.version()
        if version == self._synced:
            return
        entries: dict[str, _Entry] = {}
        for record in self._store.every():
            if record["paused"]:
                continue
            known = self._entries.get(record["schedule_id"])
            if known is None or _timing(known.record) != _timing(record):
                known = _Entry(record, cron_job(record))
            entries[record["schedule_id"]] = _Entry(record, known.job)
        self._entries = entries
        self._cron_jobs = [entry.job for entry in entries.values()]
        self._synced = version

    def enqueue_jobs(self) -> list[CronJob]:
        """Fires each due schedule once; RQ's loop then saves the fired CronJobs' timing."""
        try:
            self.sync()
            return self._fire_due()
        except REDIS_AWAY as exc:
            self.log.warning("CronScheduler %s: Redis is unreachable (%r)", self.name, exc)
            self._synced = None
            return []

    def _fire_due(self) -> list[CronJob]:
        now = self._clock()
        fired: list[CronJob] = []
        for entry in list(self._entries.values()):
            slot = entry.job.next_enqueue_time
            if slot is None or slot > now:
                continue
            if fire(self._ctx, self._store, entry.record, slot=slot, now=now) is not None:
                fired.append(entry.job)
            # As RQ does after an enqueue; the next sync rebuilds it from the record anyway.
            entry.job.set_enqueue_time(now)
        return fired

    def heartbeat(self) -> None:
        try:
            super().heartbeat()
        except REDIS_AWAY as exc:
            self.log.warning("CronScheduler %s: heartbeat failed (%r)", self.name, exc)

    def calculate_sleep_interval(self) -> float:
        """RQ's sleep until the next slot, capped so new schedules are seen within SYNC_S."""
        return min(super().calculate_sleep_interval(), SYNC_S)


def run_scheduler(settings: Settings) -> int:
    """Fire schedules until SIGTERM or SIGINT (RQ's start loop handles both). One log format
    for RQ's lines and each firing's (schedule, slot, job id or refusal)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    redis = redis_from_url(settings["redis_url"])
    ctx: SubmitContext = {"settings": settings, "redis": redis, "jobs": JobStore(redis)}
    # Typed as RQ's class: mypy's untyped_calls_exclude (pyproject) names the unannotated
    # `start` by the class it is called on.
    scheduler: CronScheduler = ScheduleScheduler(ctx)
    scheduler.start()
    return 0
