"""A tokenizer trained over HTTP, then a model trained with it: API and worker as processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from rq import Queue
from rq.serializers import JSONSerializer
from tests.conftest import SAMPLE_TEXT
from tests.support.hf_tokenizers import auto_tokenizer, hf_token_ids
from tests.support.processes import cli_process, start_api, stop

from model_trainer.client import ApiError, TrainerClient
from model_trainer.settings import Settings
from model_trainer.storage.runs import run_dir
from model_trainer.tokenizers.store import load_tokenizer, tokenizer_dir
from platform_core.json_types import JSONObject
from platform_workers.redis_conn import RedisClient


@pytest.fixture
def client(service_env: dict[str, str]) -> Iterator[TrainerClient]:
    api, base_url = start_api(service_env)
    worker = cli_process(["worker", "--queues", "train,infer"], service_env)
    trainer_client = TrainerClient(base_url)
    yield trainer_client
    trainer_client.close()
    stop(worker)
    stop(api)


def wait_done(client: TrainerClient, job_id: str) -> JSONObject:
    for _ in client.events(job_id):
        pass
    return client.job(job_id)


def result_of(client: TrainerClient, accepted: JSONObject) -> JSONObject:
    record = wait_done(client, str(accepted["job_id"]))
    assert record["status"] == "completed", record
    result = record["result"]
    assert isinstance(result, dict)
    return result


def test_train_a_bpe_tokenizer_then_a_model_with_it(
    client: TrainerClient, settings: Settings
) -> None:
    corpus_id = client.upload_corpus(SAMPLE_TEXT.encode())["corpus_id"]
    assert isinstance(corpus_id, str)
    accepted = client.submit(
        "tokenizer", {"kind": "bpe", "corpus_id": corpus_id, "vocab_size": 300}
    )
    assert (accepted["type"], accepted["queue"], accepted["run_id"]) == ("tokenizer", "train", None)
    made = result_of(client, accepted)
    tokenizer_id = made["tokenizer_id"]
    assert tokenizer_id == f"bpe-{accepted['job_id']}"
    assert (made["kind"], made["vocab_size"], made["coverage"]) == ("bpe", 300, 1.0)

    stored = load_tokenizer(tokenizer_id, settings)
    hf = auto_tokenizer(tokenizer_dir(settings, tokenizer_id))
    assert hf_token_ids(hf, SAMPLE_TEXT[:200]) == stored.encode(SAMPLE_TEXT[:200])

    trained = result_of(
        client,
        client.submit(
            "train",
            {
                "model_family": "char_lstm",
                "model_size": "tiny",
                "corpus_id": corpus_id,
                "tokenizer_id": tokenizer_id,
                "max_seq_len": 16,
                "batch_size": 8,
                "max_steps": 20,
                "device": "cpu",
            },
        ),
    )
    run_id = str(trained["run_id"])
    # the run directory carries its own copy, which transformers reads as it is
    in_run = auto_tokenizer(run_dir(settings, run_id))
    assert hf_token_ids(in_run, "To be, or not") == stored.encode("To be, or not")

    generated = result_of(
        client,
        client.submit(
            "generate", {"run_id": run_id, "prompt_text": "To be", "max_new_tokens": 10, "seed": 1}
        ),
    )
    outputs = generated["outputs"]
    assert isinstance(outputs, list) and str(outputs[0]).startswith("To be")
    scored = result_of(
        client,
        client.submit(
            "score", {"run_id": run_id, "text": "To be, or not", "detail_level": "per_char"}
        ),
    )
    per_token = scored["per_token"]
    assert isinstance(per_token, list)
    assert len(per_token) == len(stored.encode("To be, or not")) < len("To be, or not")


def test_an_unknown_tokenizer_id_is_refused_and_nothing_is_enqueued(
    client: TrainerClient, redis: RedisClient
) -> None:
    corpus_id = client.upload_corpus(SAMPLE_TEXT.encode())["corpus_id"]
    assert isinstance(corpus_id, str)
    with pytest.raises(ApiError) as caught:
        client.submit(
            "train",
            {
                "model_family": "char_lstm",
                "model_size": "tiny",
                "corpus_id": corpus_id,
                "tokenizer_id": "bpe-never-trained",
            },
        )
    assert (caught.value.status, caught.value.code) == (404, "TOKENIZER_NOT_FOUND")
    assert Queue("train", connection=redis, serializer=JSONSerializer).count == 0
    assert client.jobs()["jobs"] == []
