"""Export bundles on disk: `$ARTIFACTS_ROOT/exports/{job_id}.tar.gz`, one per export job.

The worker writes a bundle beside its final name and renames it into place, so the API, which
streams it to the job's owner, only ever finds a whole bundle or none.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from model_trainer.errors import ModelTrainerError, quoted
from model_trainer.settings import Settings
from model_trainer.storage.artifacts import publish
from model_trainer.storage.digests import process_umask

EXPORTS_DIR = "exports"
BUNDLE_SUFFIX = ".tar.gz"
BUNDLE_MEDIA_TYPE = "application/gzip"
# Job ids are uuid4 hex (api/submit.py); the alphabet keeps a path from naming any other file.
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")


def exports_dir(settings: Settings) -> Path:
    return settings["artifacts_root"] / EXPORTS_DIR


def bundle_path(settings: Settings, job_id: str) -> Path:
    if not _JOB_ID.fullmatch(job_id):
        raise ModelTrainerError(
            "INVALID_CONFIG",
            f"job_id must be 32 lowercase hex digits, got {quoted(job_id)}",
            details={"field": "job_id"},
        )
    return exports_dir(settings) / f"{job_id}{BUNDLE_SUFFIX}"


def store_bundle(settings: Settings, job_id: str, write: Callable[[Path], None]) -> Path:
    """`write` fills a temporary file that becomes the bundle whole, with an ordinary file's
    mode (0644 under umask 022), or is removed when writing fails."""
    final = bundle_path(settings, job_id)
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.with_name(f".{final.name}.partial")
    try:
        write(partial)
        partial.chmod(0o666 & ~process_umask())
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)
    publish(settings, [final])
    return final
