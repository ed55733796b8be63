"""The worker supervisor: a child that exits is started again, sooner or later, until stopped."""

from __future__ import annotations

import signal
import sys
import threading
import time

from model_trainer.worker.worker_entry import Supervisor, worker_command

DIES = [sys.executable, "-c", "import sys; sys.exit(3)"]
LIVES = [sys.executable, "-c", "import time; time.sleep(60)"]


def _run(supervisor: Supervisor) -> tuple[threading.Thread, list[int]]:
    code: list[int] = []
    thread = threading.Thread(target=lambda: code.append(supervisor.run()))
    thread.start()
    return thread, code


def _wait(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_a_dying_child_is_restarted_with_growing_backoff_and_stop_ends_all() -> None:
    supervisor = Supervisor(
        {"train": DIES, "infer": LIVES}, base_s=0.05, cap_s=0.2, stable_s=60.0, poll_s=0.01
    )
    thread, code = _run(supervisor)
    _wait(lambda: supervisor.restarts["train"] >= 4)
    assert supervisor.restarts["infer"] == 0
    started = time.monotonic()
    supervisor.stop(signal.SIGTERM)
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert time.monotonic() - started < 5
    # run() returns once every child has exited: the sleeper by SIGTERM, the other by itself
    assert code in ([3], [-signal.SIGTERM])


def test_a_child_that_lived_long_enough_restarts_after_the_base_delay() -> None:
    supervisor = Supervisor({"train": DIES}, base_s=0.01, cap_s=5.0, stable_s=0.0, poll_s=0.01)
    thread, _ = _run(supervisor)
    # every death counts as after a stable run, so the delay never grows past base_s
    _wait(lambda: supervisor.restarts["train"] >= 10, timeout=5.0)
    supervisor.stop(signal.SIGTERM)
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_children_run_this_cli_for_one_queue() -> None:
    assert worker_command("infer")[1:] == ["-m", "model_trainer.cli", "worker", "--queues", "infer"]


def test_stopping_while_a_child_waits_for_its_restart_signals_only_the_living() -> None:
    supervisor = Supervisor({"train": DIES, "infer": LIVES}, base_s=60.0, poll_s=0.01)
    thread, code = _run(supervisor)
    _wait(lambda: supervisor.alive() == {"train": False, "infer": True})
    supervisor.stop(signal.SIGTERM)
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert supervisor.restarts == {"train": 0, "infer": 0}
    assert code == [3]  # the dead child's code; the sleeper ended by the forwarded SIGTERM
