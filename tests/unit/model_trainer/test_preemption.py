"""A work horse sees its worker's shutdown in the worker's RQ hash, cheaply and for good, and
dies with its worker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import fakeredis
import pytest
from tests.support.processes import wait_for

from model_trainer.worker.preemption import (
    POLL_INTERVAL_S,
    SHUTDOWN_FIELD,
    ShutdownWatch,
    die_with_worker,
)


def test_a_shutdown_is_seen_at_the_next_poll_and_never_forgotten() -> None:
    redis = fakeredis.FakeRedis()
    now = [100.0]
    watch = ShutdownWatch(redis, "w1", clock=lambda: now[0])
    assert watch.requested() is False
    redis.hset("rq:worker:w1", SHUTDOWN_FIELD, "2026-12-02T05:00:00.000000Z")
    assert watch.requested() is False  # polled moments ago: no Redis read yet
    now[0] += POLL_INTERVAL_S
    assert watch.requested() is True and watch.seen
    redis.delete("rq:worker:w1")
    assert watch.requested() is True


def test_outside_an_rq_horse_nothing_ever_asks_to_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RQ_WORKER_ID", raising=False)
    watch = ShutdownWatch.for_this_horse(fakeredis.FakeRedis())
    assert watch.requested() is False
    monkeypatch.setenv("RQ_WORKER_ID", "w2")
    redis = fakeredis.FakeRedis()
    redis.hset("rq:worker:w2", SHUTDOWN_FIELD, "2026-12-02T05:00:00.000000Z")
    assert ShutdownWatch.for_this_horse(redis).requested() is True


def test_only_an_rq_horse_asks_to_die_with_its_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RQ_WORKER_ID", raising=False)
    assert die_with_worker() is False
    monkeypatch.setenv("RQ_WORKER_ID", "w3")
    monkeypatch.setattr(sys, "platform", "darwin")
    assert die_with_worker() is False


def test_a_child_that_asked_dies_when_its_parent_is_killed(tmp_path: Path) -> None:
    """A parent starts a child that calls die_with_worker, then the parent is SIGKILLed."""
    pid_file = tmp_path / "child.pid"
    child = (
        "import os, sys, time\n"
        "os.environ['RQ_WORKER_ID'] = 'w'\n"
        "from model_trainer.worker.preemption import die_with_worker\n"
        "assert die_with_worker()\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "time.sleep(60)\n"
    )
    parent = (
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', {child!r}])\n"
        "time.sleep(60)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", parent])
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text() != "", timeout=20, what="child")
        child_pid = int(pid_file.read_text())
        process.kill()
        process.wait()
        wait_for(lambda: _gone(child_pid), timeout=10, what="the child to die")
    finally:
        process.kill()


def _gone(pid: int) -> bool:
    """Dead, or a zombie nobody has reaped yet."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"
