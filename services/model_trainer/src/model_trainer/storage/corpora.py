"""Corpora: read with size limits from inside the configured roots only."""

from __future__ import annotations

import hashlib
import re
import sysconfig
from pathlib import Path
from typing import TypedDict

from model_trainer.errors import ModelTrainerError, quoted
from model_trainer.settings import Settings
from model_trainer.storage.artifacts import fetch
from model_trainer.storage.digests import corrupt_artifact, file_sha256


class Corpus(TypedDict):
    text: str
    sha256: str
    bytes: int


_UPLOADED = re.compile(r"^[0-9a-f]{64}\.txt$")
# A refused path comes back in the error's details as given, cut to a real path's length.
_DETAIL_LIMIT = 4096


def confine(path: str, roots: list[Path]) -> Path:
    """Resolve `path` (symlinks included) and insist it stays under one of `roots`."""
    if "\x00" in path:
        raise ModelTrainerError(
            "INVALID_PATH",
            f"path {quoted(path)} contains a NUL byte",
            details={"path": quoted(path)},
        )
    resolved = Path(path).resolve()
    for root in roots:
        if resolved.is_relative_to(root.resolve()):
            return resolved
    raise ModelTrainerError(
        "PATH_OUTSIDE_ROOT",
        f"{quoted(path)} is outside the allowed roots {', '.join(str(r) for r in roots)}",
        details={"path": path[:_DETAIL_LIMIT]},
    )


def corpus_roots(settings: Settings) -> list[Path]:
    """Path-referenced corpora live under DATA_ROOT; uploaded ones under ARTIFACTS_ROOT/corpora."""
    return [settings["data_root"], settings["artifacts_root"] / "corpora"]


def local_corpus_path(settings: Settings, path: str) -> str:
    """An uploaded corpus's path in this process's root: a job names it by the path of the
    process that submitted it (`{its root}/corpora/{sha256}.txt`), and with a shared store
    each machine keeps its own root. Paths under DATA_ROOT stay as given."""
    given = Path(path)
    if (
        _UPLOADED.fullmatch(given.name)
        and given.parent.name == "corpora"
        and not given.is_relative_to(settings["data_root"])
    ):
        return str(settings["artifacts_root"] / "corpora" / given.name)
    return path


def cached_corpus(settings: Settings, path: Path) -> Path:
    """An uploaded corpus (`ARTIFACTS_ROOT/corpora/{sha256}.txt`) brought from the store when
    this process lacks it, checked against the digest it is named by; other paths as given."""
    if not path.is_relative_to(settings["artifacts_root"] / "corpora") or path.is_file():
        return path
    if fetch(settings, path) and file_sha256(path) != path.stem:
        path.unlink()
        raise corrupt_artifact(path.parent, path.name, "does not match the sha256 it is named by")
    return path


def read_corpus(path: str, settings: Settings) -> Corpus:
    """The corpus text, checked for presence, size and emptiness before anything trains on it."""
    resolved = cached_corpus(
        settings, confine(local_corpus_path(settings, path), corpus_roots(settings))
    )
    if not resolved.is_file():
        raise ModelTrainerError(
            "CORPUS_NOT_FOUND", f"corpus {path} does not exist", details={"path": path}
        )
    size = resolved.stat().st_size
    if size > settings["max_corpus_bytes"]:
        raise ModelTrainerError(
            "CORPUS_TOO_LARGE",
            f"corpus {path} has {size} bytes; the limit is {settings['max_corpus_bytes']}",
            details={"path": path, "bytes": size},
        )
    raw = resolved.read_bytes()
    if not raw.strip():
        raise ModelTrainerError("CORPUS_EMPTY", f"corpus {path} is empty", details={"path": path})
    return {
        "text": raw.decode("utf-8", errors="replace"),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "bytes": size,
    }


def build_default_corpus(dest: Path, *, max_bytes: int = 1_000_000) -> Path:
    """Python's own standard library sources: text every machine has, so nothing is downloaded."""
    if dest.is_file() and dest.stat().st_size > 0:
        return dest
    stdlib = Path(sysconfig.get_path("stdlib"))
    parts: list[bytes] = []
    total = 0
    for source in sorted(stdlib.glob("*.py")):
        chunk = source.read_bytes()
        parts.append(chunk)
        total += len(chunk)
        if total >= max_bytes:
            break
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(b"".join(parts)[:max_bytes])
    return dest
