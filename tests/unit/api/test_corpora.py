"""Corpus uploads: content-addressed, idempotent, refused early when too big, empty or not text."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from starlette.types import Message

from model_trainer.api.routes.corpora import copy_body
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings

TEXT = "Shall I compare thee to a summer's day?\nThou art more lovely — and more temperate.\n"


def corpora_files(settings: Settings) -> list[str]:
    directory = settings["artifacts_root"] / "corpora"
    return sorted(path.name for path in directory.iterdir()) if directory.exists() else []


def test_upload_stores_the_text_under_its_sha256(client: TestClient, settings: Settings) -> None:
    raw = TEXT.encode("utf-8")
    digest = hashlib.sha256(raw).hexdigest()
    response = client.post(
        "/v1/corpora", content=raw, headers={"content-type": "text/plain; charset=utf-8"}
    )
    assert response.status_code == 201
    assert response.json() == {"corpus_id": digest, "bytes": len(raw), "sha256": digest}
    stored = settings["artifacts_root"] / "corpora" / f"{digest}.txt"
    assert stored.read_bytes() == raw
    assert corpora_files(settings) == [f"{digest}.txt"]


def test_curls_default_form_content_type_is_stored_verbatim(
    client: TestClient, settings: Settings
) -> None:
    raw = b"a=1&b=2 looks like a form but is a corpus\n"
    response = client.post(
        "/v1/corpora",
        content=raw,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 201
    corpus_id = response.json()["corpus_id"]
    assert (settings["artifacts_root"] / "corpora" / f"{corpus_id}.txt").read_bytes() == raw


def test_uploading_the_same_text_twice_gives_the_same_corpus(
    client: TestClient, settings: Settings
) -> None:
    first = client.post("/v1/corpora", content=TEXT.encode())
    second = client.post("/v1/corpora", content=TEXT.encode())
    other = client.post("/v1/corpora", content=(TEXT + "!").encode())
    assert first.json() == second.json()
    assert other.json()["corpus_id"] != first.json()["corpus_id"]
    assert len(corpora_files(settings)) == 2


def test_a_body_streamed_in_chunks_splitting_a_character_is_accepted(
    client: TestClient, settings: Settings
) -> None:
    raw = TEXT.encode("utf-8")
    cut = raw.index("—".encode()) + 1

    def chunks() -> Iterator[bytes]:
        yield raw[:cut]
        yield raw[cut:]

    response = client.post("/v1/corpora", content=chunks())
    assert response.status_code == 201
    assert response.json()["sha256"] == hashlib.sha256(raw).hexdigest()


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"", 400, "CORPUS_EMPTY"),
        (b" \n\t\r\n  ", 400, "CORPUS_EMPTY"),
        (b"caf\xe9 latin-1", 422, "INVALID_CONFIG"),
        (b"ends mid-character \xe2\x80", 422, "INVALID_CONFIG"),
    ],
    ids=["empty", "whitespace", "latin-1", "truncated-utf8"],
)
def test_refused_uploads_leave_no_file(
    client: TestClient, settings: Settings, raw: bytes, status: int, code: str
) -> None:
    response = client.post("/v1/corpora", content=raw)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert corpora_files(settings) == []


def test_an_oversized_upload_is_refused(client: TestClient, settings: Settings) -> None:
    limit = settings["max_corpus_bytes"]
    response = client.post("/v1/corpora", content=b"a" * (limit + 1))
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "CORPUS_TOO_LARGE"
    assert error["details"] == {"limit": limit}
    assert corpora_files(settings) == []


def test_reading_stops_at_the_first_chunk_past_the_limit() -> None:
    received: list[int] = []

    async def receive() -> Message:
        received.append(1)
        return {"type": "http.request", "body": b"a" * 400, "more_body": True}

    async def upload() -> None:
        request = Request({"type": "http", "method": "POST", "headers": []}, receive)
        await copy_body(request, io.BytesIO(), 1000)

    with pytest.raises(ModelTrainerError) as refused:
        asyncio.run(upload())
    assert refused.value.code == "CORPUS_TOO_LARGE"
    assert len(received) == 3


def test_exactly_the_limit_is_accepted(client: TestClient, settings: Settings) -> None:
    response = client.post("/v1/corpora", content=b"a" * settings["max_corpus_bytes"])
    assert response.status_code == 201
    assert response.json()["bytes"] == settings["max_corpus_bytes"]


def test_an_uploaded_corpus_trains(client: TestClient, tmp_path: Path) -> None:
    corpus_id = client.post("/v1/corpora", content=TEXT.encode()).json()["corpus_id"]
    response = client.post(
        "/v1/jobs/train",
        json={"model_family": "char_lstm", "model_size": "tiny", "corpus_id": corpus_id},
    )
    assert response.status_code == 202
