"""process_tokenizer_job: train a tokenizer on a corpus and store it under its id."""

from __future__ import annotations

import time

from model_trainer.contracts.jobs import QUEUE_FOR_TYPE, TokenizerJobPayload
from model_trainer.contracts.tokenizer import TokenizerHandle, TokenizerInfo, TokenizerTrainConfig
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.corpora import read_corpus
from model_trainer.storage.job_store import JobStore
from model_trainer.tokenizers.bpe import BPETokenizer
from model_trainer.tokenizers.char import CharTokenizer
from model_trainer.tokenizers.store import save_tokenizer
from model_trainer.worker.job_utils import connect, job_context, run_job, to_json_object
from platform_core.json_types import JSONObject
from platform_workers.job_context import JobContext
from platform_workers.redis_conn import RedisClient


def process_tokenizer_job(payload: TokenizerJobPayload) -> JSONObject:
    """RQ entry point on the `train` queue (enqueued by dotted path)."""
    settings, redis = connect()
    return run_tokenizer_job(payload, settings=settings, redis=redis)


def run_tokenizer_job(
    payload: TokenizerJobPayload, *, settings: Settings, redis: RedisClient
) -> JSONObject:
    job_id = payload["job_id"]
    queue = QUEUE_FOR_TYPE["tokenizer"]
    ctx = job_context(redis, job_id=job_id, user_id=payload["user_id"], queue=queue)
    return run_job(
        ctx,
        JobStore(redis),
        job_id,
        lambda: to_json_object(train_tokenizer(payload["config"], settings, ctx)),
        job_type="tokenizer",
        config=payload.get("config"),
    )


def build_tokenizer(cfg: TokenizerTrainConfig, text: str) -> TokenizerHandle:
    if cfg["kind"] == "char":
        return CharTokenizer.build(text, cfg["tokenizer_id"], vocab_size=cfg["vocab_size"])
    return BPETokenizer.train(text, cfg["tokenizer_id"], vocab_size=cfg["vocab_size"])


def train_tokenizer(
    cfg: TokenizerTrainConfig, settings: Settings, ctx: JobContext
) -> TokenizerInfo:
    """Train, measure coverage on the same corpus, then store (unless cancelled meanwhile)."""
    corpus = read_corpus(cfg["corpus_path"], settings)
    tokenizer = build_tokenizer(cfg, corpus["text"])
    ctx.heartbeat(time.time())
    coverage = tokenizer.coverage(corpus["text"])
    if ctx.cancelled():
        raise ModelTrainerError(
            "TRAINING_CANCELLED", f"tokenizer {cfg['tokenizer_id']} cancelled before it was stored"
        )
    save_tokenizer(tokenizer, settings)
    return {
        "tokenizer_id": tokenizer.tokenizer_id,
        "kind": tokenizer.kind,
        "vocab_size": tokenizer.vocab_size,
        "coverage": coverage,
    }
