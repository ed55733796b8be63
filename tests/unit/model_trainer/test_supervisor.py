"""The worker supervisor: a child that exits is started again, sooner or later, until stopped."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import fakeredis
import pytest

from model_trainer.settings import Settings
from model_trainer.worker import worker_entry
from model_trainer.worker.worker_entry import Supervisor, child_commands, worker_command

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


def test_children_run_this_cli_for_one_queue_and_the_found_device() -> None:
    assert worker_command("infer", "cuda")[1:] == [
        "-m",
        "model_trainer.cli",
        "worker",
        "--queues",
        "infer",
        "--device",
        "cuda",
    ]


def test_stopping_while_a_child_waits_for_its_restart_signals_only_the_living() -> None:
    supervisor = Supervisor({"train": DIES, "infer": LIVES}, base_s=60.0, poll_s=0.01)
    thread, code = _run(supervisor)
    _wait(lambda: supervisor.alive() == {"train": False, "infer": True})
    supervisor.stop(signal.SIGTERM)
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert supervisor.restarts == {"train": 0, "infer": 0}
    assert code == [3]  # the dead child's code; the sleeper ended by the forwarded SIGTERM


def test_a_worker_process_imports_no_torch_until_a_job_needs_it() -> None:
    """The infer worker sets OMP_NUM_THREADS before torch is first imported, and a worker
    parent stays small: the entry point and the job lifecycle must not pull torch in."""
    code = (
        "import sys\n"
        "import model_trainer.worker.worker_entry, model_trainer.cli\n"
        "print([m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers')])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_failing_maintenance_round_is_logged_and_the_next_one_runs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, settings: Settings
) -> None:
    rounds: list[int] = []

    def flaky(worker: object, settings: Settings) -> None:
        rounds.append(1)
        if len(rounds) == 1:
            raise RuntimeError("a bug in one round")

    monkeypatch.setattr(worker_entry, "maintain", flaky)
    worker = worker_entry.make_worker("infer", fakeredis.FakeRedis())
    thread = worker_entry.keep_maintaining(worker, settings, interval_s=0.01)
    _wait(lambda: len(rounds) >= 3)
    assert thread.daemon and thread.is_alive()
    assert "maintenance round failed" in caplog.text


def test_several_processes_per_queue_are_children_named_by_queue_and_number() -> None:
    assert list(child_commands(["train", "infer"], "cpu", 1)) == ["train", "infer"]
    several = child_commands(["train", "infer"], "cpu", 2)
    assert list(several) == ["train-1", "train-2", "infer-1", "infer-2"]
    assert several["infer-2"] == worker_command("infer", "cpu")
