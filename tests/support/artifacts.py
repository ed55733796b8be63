"""Damaging artifacts the way disks and people do, and the umask the mode tests assume."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from model_trainer.storage.digests import process_umask


def flip_last_byte(path: Path) -> None:
    """Same size, one bit of a tensor changed: safetensors would load it without a word."""
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0x01
    path.write_bytes(bytes(raw))


def truncate_half(path: Path) -> None:
    """What a full disk or a killed copy leaves."""
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size // 2)


@contextmanager
def usual_umask() -> Iterator[None]:
    """Umask 022, read afresh by the code under test (which reads it once and keeps it)."""
    previous = os.umask(0o022)
    process_umask.cache_clear()
    try:
        yield
    finally:
        os.umask(previous)
        process_umask.cache_clear()


def modes(root: Path) -> dict[str, int]:
    """Permission bits of `root` (as ".") and everything under it, by relative path."""
    found = {".": root.stat().st_mode & 0o777}
    for path in sorted(root.rglob("*")):
        found[str(path.relative_to(root))] = path.stat().st_mode & 0o777
    return found
