"""`POST /v1/corpora`: store an uploaded corpus under its sha256, so equal uploads are one file.

The body is the raw text (`curl --data-binary @file`), read chunk by chunk: the upload is
refused as soon as it passes MAX_CORPUS_BYTES, and memory stays flat whatever its size. The
file appears under its final name only when complete (temp file, then rename).
"""

from __future__ import annotations

import asyncio
import codecs
import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from fastapi import APIRouter, Depends, Request
from typing_extensions import TypedDict

from model_trainer.api import ApiContext
from model_trainer.api.body_limit import declared_length
from model_trainer.api.openapi import refusals
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.api_keys import Principal
from model_trainer.storage.artifacts import publish
from model_trainer.storage.digests import process_umask
from model_trainer.storage.owners import add_corpus, corpus_bytes
from platform_core.json_types import ROOT_FIELD

_TEXT_BODY: dict[str, object] = {
    "requestBody": {
        "required": True,
        "description": "the corpus as UTF-8 text (`curl --data-binary @corpus.txt`)",
        "content": {
            "text/plain": {
                "schema": {"type": "string", "examples": ["First Citizen:\nBefore we proceed"]}
            }
        },
    }
}


class StoredCorpus(TypedDict):
    """An uploaded corpus: train, eval and tokenizer jobs name it by `corpus_id`."""

    corpus_id: str
    bytes: int
    sha256: str


def corpora_dir(settings: Settings) -> Path:
    return settings["artifacts_root"] / "corpora"


async def copy_body(request: Request, sink: BinaryIO, limit: int) -> StoredCorpus:
    """Copy the body into `sink`, checking size, UTF-8 and non-emptiness on the way."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    size = 0
    has_text = False
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ModelTrainerError(
                "CORPUS_TOO_LARGE",
                f"corpus upload exceeds the limit of {limit} bytes",
                details={"limit": limit},
            )
        _decode(decoder, chunk, final=False)
        has_text = has_text or bool(chunk.strip())
        digest.update(chunk)
        sink.write(chunk)
    _decode(decoder, b"", final=True)
    if not has_text:
        raise ModelTrainerError("CORPUS_EMPTY", "corpus upload is empty or only whitespace")
    sha256 = digest.hexdigest()
    return {"corpus_id": sha256, "bytes": size, "sha256": sha256}


def _decode(decoder: codecs.IncrementalDecoder, chunk: bytes, *, final: bool) -> None:
    try:
        decoder.decode(chunk, final=final)
    except UnicodeDecodeError as exc:
        raise ModelTrainerError(
            "INVALID_CONFIG",
            f"corpus upload is not valid UTF-8 text: {exc.reason}",
            details={"field": ROOT_FIELD},
        ) from exc


def check_corpus_quota(settings: Settings, used: int, adding: int) -> None:
    limit = settings["max_user_corpus_bytes"]
    if used + adding > limit:
        raise ModelTrainerError(
            "QUOTA_EXCEEDED",
            f"your corpora would take {used + adding} bytes; your limit is {limit} "
            "(MAX_USER_CORPUS_BYTES)",
            details={"used": used, "adding": adding, "limit": limit},
        )


def build_corpora_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["corpora"])
    key = Depends(ctx["caller"])

    @router.post(
        "/v1/corpora",
        status_code=201,
        response_model=StoredCorpus,
        openapi_extra=_TEXT_BODY,
        responses=refusals("CORPUS_TOO_LARGE", "CORPUS_EMPTY", "QUOTA_EXCEEDED"),
    )
    async def upload_corpus(request: Request, caller: Principal = key) -> StoredCorpus:
        """Store a corpus under its sha256. Counted against the caller's MAX_USER_CORPUS_BYTES;
        re-uploading one's own corpus is free. (A plain `async def`: the quota's Redis reads
        are two short calls.)"""
        settings = ctx["settings"]
        # A declared size past the whole quota is refused before a byte is stored.
        check_corpus_quota(settings, 0, declared_length(request.scope) or 0)
        directory = corpora_dir(settings)
        directory.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(dir=directory, prefix=".upload-", suffix=".part")
        try:
            with os.fdopen(handle, "wb") as sink:
                stored = await copy_body(request, sink, settings["max_corpus_bytes"])
            others = corpus_bytes(ctx["redis"], caller["user_id"], except_id=stored["corpus_id"])
            check_corpus_quota(settings, others, stored["bytes"])
            # mkstemp makes 0600 files: a stored corpus gets what the umask gives any file.
            os.chmod(partial, 0o666 & ~process_umask())
            os.replace(partial, directory / f"{stored['sha256']}.txt")
        finally:
            Path(partial).unlink(missing_ok=True)
        # An upload to S3 takes a while: off the event loop, like a file copy would be.
        await asyncio.to_thread(publish, settings, [directory / f"{stored['sha256']}.txt"])
        add_corpus(ctx["redis"], caller["user_id"], stored["corpus_id"], stored["bytes"])
        return stored

    return router
