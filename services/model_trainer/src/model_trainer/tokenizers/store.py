"""Tokenizers stored by id: `$ARTIFACTS_ROOT/tokenizers/{tokenizer_id}/`.

The API only asks whether a tokenizer exists, so this module imports neither Hugging Face
`tokenizers` nor numpy at import time; the class that reads a directory is imported on load.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from model_trainer.contracts.tokenizer import (
    META_FILE,
    TOKENIZER_KINDS,
    TokenizerHandle,
    TokenizerMeta,
)
from model_trainer.contracts.validators import validate_tokenizer_id
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.artifacts import fetch_missing, publish_dir, stored, stored_files
from model_trainer.storage.digests import ordinary_permissions
from platform_core.json_types import (
    PayloadError,
    load_json_object,
    require_int,
    require_literal,
    require_str,
)


def tokenizer_dir(settings: Settings, tokenizer_id: str) -> Path:
    """The id's alphabet keeps the directory inside `$ARTIFACTS_ROOT/tokenizers`."""
    validate_tokenizer_id(tokenizer_id)
    return settings["artifacts_root"] / "tokenizers" / tokenizer_id


def tokenizer_exists(tokenizer_id: str, settings: Settings) -> bool:
    """Saves are atomic (whole directories, the meta file published last), so a meta file
    means a complete tokenizer."""
    return stored(settings, tokenizer_dir(settings, tokenizer_id) / META_FILE)


def fetch_tokenizer(tokenizer_id: str, settings: Settings) -> Path:
    """The stored tokenizer's directory, with the files this process lacks brought here (an
    id names one tokenizer for good, so a cached file is never stale)."""
    directory = tokenizer_dir(settings, tokenizer_id)
    for name in stored_files(settings, directory):
        fetch_missing(settings, directory / name)
    return directory


def save_tokenizer(tokenizer: TokenizerHandle, settings: Settings) -> Path:
    """Write into a temporary directory, then rename it into place, so readers never see half
    a tokenizer.

    An id names one tokenizer for good (a character tokenizer is named by its corpus's digest,
    a job-trained one by its job), so when the id is already stored that copy is kept.
    """
    target = tokenizer_dir(settings, tokenizer.tokenizer_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{tokenizer.tokenizer_id}-", dir=target.parent))
    tokenizer.save(staging)
    ordinary_permissions(staging)  # mkdtemp made it owner-only
    try:
        staging.rename(target)
    except OSError:
        shutil.rmtree(staging)
        if not (target / META_FILE).is_file():
            raise
    publish_dir(settings, target, META_FILE)
    return target


def require_tokenizer(tokenizer_id: str, settings: Settings) -> None:
    """Refuse an id nothing is stored under (the API's check before it enqueues)."""
    if not tokenizer_exists(tokenizer_id, settings):
        raise ModelTrainerError(
            "TOKENIZER_NOT_FOUND",
            f"tokenizer {tokenizer_id} does not exist; train one with POST /v1/jobs/tokenizer",
            details={"field": "tokenizer_id", "tokenizer_id": tokenizer_id},
        )


def load_tokenizer(tokenizer_id: str, settings: Settings) -> TokenizerHandle:
    require_tokenizer(tokenizer_id, settings)
    return load_tokenizer_dir(fetch_tokenizer(tokenizer_id, settings))


def read_meta(directory: Path) -> TokenizerMeta:
    path = directory / META_FILE
    if not path.is_file():
        raise ModelTrainerError(
            "TOKENIZER_NOT_FOUND", f"no tokenizer in {directory}", details={"path": str(directory)}
        )
    try:
        raw = load_json_object(path.read_bytes())
        return {
            "tokenizer_id": require_str(raw, "tokenizer_id"),
            "kind": require_literal(raw, "kind", TOKENIZER_KINDS),
            "vocab_size": require_int(raw, "vocab_size"),
        }
    except PayloadError as exc:
        raise ModelTrainerError(
            "TOKENIZER_LOAD_FAILED",
            f"{path} is not a tokenizer meta file: {exc}",
            details={"path": str(path), "field": exc.field},
        ) from exc


def load_tokenizer_dir(directory: Path) -> TokenizerHandle:
    """Read back what `TokenizerHandle.save` wrote (a stored tokenizer or a run's copy)."""
    meta = read_meta(directory)
    tokenizer: TokenizerHandle
    if meta["kind"] == "char":
        from model_trainer.tokenizers.char import CharTokenizer

        tokenizer = CharTokenizer.load(directory, meta)
    else:
        from model_trainer.tokenizers.bpe import BPETokenizer

        tokenizer = BPETokenizer.load(directory, meta)
    if tokenizer.vocab_size != meta["vocab_size"]:
        raise ModelTrainerError(
            "TOKENIZER_LOAD_FAILED",
            f"tokenizer in {directory} has {tokenizer.vocab_size} tokens, "
            f"its {META_FILE} says {meta['vocab_size']}",
            details={"path": str(directory)},
        )
    return tokenizer
