"""A tiny GPT-2 over HTTP: API and worker as processes on a real redis-server; train, then
score and sample it, then load its run directory with Hugging Face's Auto classes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from tests.conftest import SAMPLE_TEXT
from tests.support.jobs import finished
from tests.support.processes import cli_process, start_api, stop
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from model_trainer.client import ApiError, TrainerClient
from model_trainer.settings import Settings


@pytest.fixture
def client(service_env: dict[str, str]) -> Iterator[TrainerClient]:
    api, base_url = start_api(service_env)
    worker = cli_process(["worker", "--queues", "train,infer"], service_env)
    trainer_client = TrainerClient(base_url)
    yield trainer_client
    trainer_client.close()
    stop(worker)
    stop(api)


def test_train_a_tiny_gpt2_then_score_and_sample_it(
    client: TrainerClient, settings: Settings
) -> None:
    corpus_id = client.upload_corpus(SAMPLE_TEXT.encode())["corpus_id"]
    accepted = client.submit(
        "train",
        {
            "model_family": "gpt2",
            "model_size": "tiny",
            "corpus_id": corpus_id,
            "max_seq_len": 32,
            "batch_size": 8,
            "max_steps": 40,
            "learning_rate": 1e-2,
            "log_every_steps": 5,
            "device": "cpu",
        },
    )
    run_id = str(accepted["run_id"])
    trained = finished(client, str(accepted["job_id"]))
    assert trained["steps"] == 40
    val_loss = trained["val_loss"]
    assert isinstance(val_loss, float) and val_loss < 3.0

    text = "To be, or not"
    scored = client.submit("score", {"run_id": run_id, "text": text, "detail_level": "per_char"})
    per_token = finished(client, str(scored["job_id"]))["per_token"]
    assert isinstance(per_token, list) and len(per_token) == len(text)
    spans = [(entry["start"], entry["end"]) for entry in per_token if isinstance(entry, dict)]
    assert spans == [(i, i + 1) for i in range(len(text))]

    sampled = client.submit(
        "generate",
        {
            "run_id": run_id,
            "prompt_text": "To be",
            "max_new_tokens": 30,
            "seed": 3,
            "num_return_sequences": 2,
            "stop_on_eos": False,
        },
    )
    generated = finished(client, str(sampled["job_id"]))
    outputs = generated["outputs"]
    assert isinstance(outputs, list) and len(outputs) == 2
    assert all(isinstance(o, str) and o.startswith("To be") for o in outputs)
    assert generated["new_tokens"] == [30, 30]

    # the run directory is a Hugging Face model as it is
    run_dir = settings["artifacts_root"] / "runs" / run_id
    tokenizer = AutoTokenizer.from_pretrained(run_dir)
    assert isinstance(tokenizer, PreTrainedTokenizerBase)
    model = AutoModelForCausalLM.from_pretrained(run_dir)
    ids: list[int] = tokenizer(text)["input_ids"]
    with torch.no_grad():
        logits: torch.Tensor = model(torch.tensor([[tokenizer.eos_token_id, *ids]])).logits
    # their mean next-token loss over the text is what our score job reported
    log_probs = torch.log_softmax(logits[0, :-1], dim=-1)
    nll = -log_probs.gather(1, torch.tensor(ids)[:, None]).mean().item()
    summary = client.submit("score", {"run_id": run_id, "text": text})
    assert finished(client, str(summary["job_id"]))["loss"] == pytest.approx(nll, rel=1e-4)


def test_a_bad_model_size_is_a_coded_400(client: TrainerClient) -> None:
    corpus_id = client.upload_corpus(SAMPLE_TEXT.encode())["corpus_id"]
    with pytest.raises(ApiError) as caught:
        client.submit(
            "train", {"model_family": "gpt2", "model_size": "huge", "corpus_id": corpus_id}
        )
    assert caught.value.status == 400
    assert caught.value.code == "INVALID_MODEL_SIZE"
    assert "tiny, nano, small, medium" in str(caught.value)
