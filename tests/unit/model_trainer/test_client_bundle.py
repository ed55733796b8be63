"""Downloading a bundle: streamed to its file whole, checked against the digest sent with it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from model_trainer.client import ApiError, BundleMismatch, TrainerClient

BUNDLE = b"gzip bytes" * 1000


def client_answering(headers: dict[str, str], status: int = 200) -> TrainerClient:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/jobs/j1/bundle"
        if status != 200:
            return httpx.Response(status, json={"error": {"code": "JOB_NOT_COMPLETED"}})
        return httpx.Response(200, content=BUNDLE, headers=headers)

    return TrainerClient("http://api", api_key="k", transport=httpx.MockTransport(answer))


@pytest.mark.parametrize("headers", [{"X-Bundle-SHA256": hashlib.sha256(BUNDLE).hexdigest()}, {}])
def test_a_bundle_lands_whole_with_its_digest(tmp_path: Path, headers: dict[str, str]) -> None:
    out = tmp_path / "b.tar.gz"
    digest = client_answering(headers).download_bundle("j1", out)
    assert digest == hashlib.sha256(BUNDLE).hexdigest()
    assert out.read_bytes() == BUNDLE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.tar.gz"]


def test_a_bundle_whose_bytes_differ_from_its_digest_is_not_kept(tmp_path: Path) -> None:
    out = tmp_path / "b.tar.gz"
    with pytest.raises(BundleMismatch, match="does not match its sha256"):
        client_answering({"X-Bundle-SHA256": "0" * 64}).download_bundle("j1", out)
    assert list(tmp_path.iterdir()) == []


def test_a_refused_download_raises_the_coded_error_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ApiError) as caught:
        client_answering({}, status=409).download_bundle("j1", tmp_path / "b.tar.gz")
    assert (caught.value.status, caught.value.code) == (409, "JOB_NOT_COMPLETED")
    assert list(tmp_path.iterdir()) == []
