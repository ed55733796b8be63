"""`POST /v1/corpora`: store an uploaded corpus under its sha256, so equal uploads are one file.

The body is the raw text (`curl --data-binary @file`), read chunk by chunk: the upload is
refused as soon as it passes MAX_CORPUS_BYTES, and memory stays flat whatever its size. The
file appears under its final name only when complete (temp file, then rename).
"""

from __future__ import annotations

import codecs
import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from fastapi import APIRouter, Request
from typing_extensions import TypedDict

from model_trainer.api import ApiContext
from model_trainer.api.routes import ERROR_RESPONSES
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from platform_core.json_types import ROOT_FIELD

_TEXT_BODY: dict[str, object] = {
    "requestBody": {
        "required": True,
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
}


class StoredCorpus(TypedDict):
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


def build_corpora_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["corpora"], responses=ERROR_RESPONSES)

    @router.post(
        "/v1/corpora",
        status_code=201,
        response_model=StoredCorpus,
        openapi_extra=_TEXT_BODY,
    )
    async def upload_corpus(request: Request) -> StoredCorpus:
        settings = ctx["settings"]
        directory = corpora_dir(settings)
        directory.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(dir=directory, prefix=".upload-", suffix=".part")
        try:
            with os.fdopen(handle, "wb") as sink:
                stored = await copy_body(request, sink, settings["max_corpus_bytes"])
            os.replace(partial, directory / f"{stored['sha256']}.txt")
        finally:
            Path(partial).unlink(missing_ok=True)
        return stored

    return router
