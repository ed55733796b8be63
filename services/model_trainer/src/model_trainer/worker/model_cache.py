"""Recently used trained models, kept loaded between inference jobs in one worker process."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

from model_trainer.backends.registry import get_backend
from model_trainer.contracts.model import PreparedLMModel
from model_trainer.contracts.validators import parse_model_family
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.digests import plain_files
from model_trainer.storage.run_store import fetch_run
from model_trainer.storage.runs import MANIFEST_FILE
from platform_core.json_types import load_json_object, require_str

if TYPE_CHECKING:
    from model_trainer.backends.causal_lm import CausalLMBackend

CACHE_SIZE = 4

# (name, inode, size, ctime) of each file in a run directory.
Fingerprint = tuple[tuple[str, int, int, int], ...]

_cache: OrderedDict[
    tuple[str, int | None, Fingerprint], tuple[CausalLMBackend, PreparedLMModel]
] = OrderedDict()


def _fingerprint(directory: Path) -> Fingerprint:
    """What any write, truncation or replacement of a run's files changes: a stat per file,
    no hashing. Its ctime, unlike its mtime, cannot be set back by whoever wrote the file."""
    stats = ((name, (directory / name).stat()) for name in plain_files(directory))
    return tuple((name, st.st_ino, st.st_size, st.st_ctime_ns) for name, st in stats)


def load_run(
    run_id: str, settings: Settings, *, step: int | None = None
) -> tuple[CausalLMBackend, PreparedLMModel]:
    """The run's backend and model (its checkpoint's weights at `step`, if given); a hit skips
    loading (and hashing), while a run whose files changed since (retrained, tampered,
    truncated) misses, so its load checks them again."""
    directory = fetch_run(settings, run_id)
    manifest = directory / MANIFEST_FILE
    if not manifest.is_file():
        raise ModelTrainerError(
            "MODEL_NOT_FOUND", f"run {run_id} has no trained model", details={"run_id": run_id}
        )
    key = (run_id, step, _fingerprint(directory))
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    family = parse_model_family(
        require_str(load_json_object(manifest.read_bytes()), "model_family")
    )
    backend = get_backend(family)
    entry = (backend, backend.load_at(str(directory), settings, step=step))
    _cache[key] = entry
    while len(_cache) > CACHE_SIZE:
        _cache.popitem(last=False)
    return entry


def clear() -> None:
    _cache.clear()
