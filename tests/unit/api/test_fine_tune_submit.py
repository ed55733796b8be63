"""Fine-tuning requests: gpt2 only, a checkpoint inside the roots, a tokenizer of its vocab."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import fakeredis
import orjson
import pytest
from fastapi.testclient import TestClient
from rq import Queue
from rq.serializers import JSONSerializer

from model_trainer.settings import Settings
from model_trainer.storage.owners import Owned
from platform_core.json_types import JSONObject


@pytest.fixture
def checkpoint(settings: Settings) -> Path:
    """A Hugging Face checkpoint directory as far as the API looks: its config.json."""
    directory = settings["data_root"] / "ckpt"
    directory.mkdir()
    (directory / "config.json").write_bytes(orjson.dumps({"vocab_size": 300}))
    return directory


def _tokenizer(
    settings: Settings, own: Callable[[Owned, str], None], tokenizer_id: str, vocab_size: int
) -> None:
    own("tokenizer", tokenizer_id)
    directory = settings["artifacts_root"] / "tokenizers" / tokenizer_id
    directory.mkdir(parents=True)
    meta = {"tokenizer_id": tokenizer_id, "kind": "bpe", "vocab_size": vocab_size}
    (directory / "tokenizer_meta.json").write_bytes(orjson.dumps(meta))


def _body(**fields: str) -> JSONObject:
    body: JSONObject = {
        "model_family": "gpt2",
        "model_size": "tiny",
        "corpus_path": "corpus.txt",
        "max_seq_len": 32,
    }
    body.update(fields)
    return body


@pytest.mark.usefixtures("corpus_path")
def test_a_matching_checkpoint_is_enqueued_with_its_absolute_path(
    client: TestClient,
    settings: Settings,
    checkpoint: Path,
    redis: fakeredis.FakeRedis,
    own: Callable[[Owned, str], None],
) -> None:
    _tokenizer(settings, own, "bpe-300", 300)
    response = client.post(
        "/v1/jobs/train", json=_body(init_from="ckpt", tokenizer_id="bpe-300", compile="x")
    )
    assert response.status_code == 422  # compile must be a bool
    response = client.post(
        "/v1/jobs/train", json={**_body(init_from="ckpt", tokenizer_id="bpe-300"), "compile": True}
    )
    assert response.status_code == 202, response.text
    job = Queue("train", connection=redis, serializer=JSONSerializer).jobs[0]
    config = job.args[0]["config"]
    assert config["init_from"] == str(checkpoint)
    assert config["compile"] is True


BadCase = tuple[dict[str, str], int, int, str, str | None]
BAD_CASES: list[BadCase] = [
    (
        {"init_from": "ckpt", "tokenizer_id": "bpe-x"},
        301,
        400,
        "MODEL_INCOMPATIBLE",
        "tokenizer_id",
    ),
    ({"init_from": "ckpt"}, 300, 422, "INVALID_CONFIG", "tokenizer_id"),
    ({"init_from": "elsewhere", "tokenizer_id": "bpe-x"}, 300, 404, "MODEL_NOT_FOUND", "init_from"),
    ({"init_from": "/etc", "tokenizer_id": "bpe-x"}, 300, 400, "PATH_OUTSIDE_ROOT", None),
    (
        {"init_from": "ckpt", "tokenizer_id": "bpe-x", "model_family": "char_lstm"},
        300,
        422,
        "INVALID_CONFIG",
        "init_from",
    ),
]


@pytest.mark.usefixtures("corpus_path", "checkpoint")
@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_fine_tuning_requests_are_coded_and_leave_no_trace(
    client: TestClient,
    settings: Settings,
    assert_no_trace: Callable[[], None],
    own: Callable[[Owned, str], None],
    case: BadCase,
) -> None:
    fields, vocab, status, code, field = case
    _tokenizer(settings, own, "bpe-x", vocab)
    response = client.post("/v1/jobs/train", json=_body(**fields))
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    if field is not None:
        assert error["details"]["field"] == field
    assert_no_trace()
