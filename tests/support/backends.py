"""Small trainings the backend tests share: one quick recipe, one tokenizer, one run."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import SAMPLE_TEXT

from model_trainer.backends.causal_lm import CausalLMBackend
from model_trainer.contracts.model import (
    ModelFamily,
    PreparedLMModel,
    StepMetrics,
    TrainingCallbacks,
    TrainOutcome,
)
from model_trainer.contracts.tokenizer import TokenizerHandle
from model_trainer.contracts.train_config import TRAIN_DEFAULTS, ModelTrainConfig, make_train_config
from model_trainer.settings import Settings
from model_trainer.storage.corpora import read_corpus
from model_trainer.tokenizers.char import CharTokenizer


def train_cfg(
    family: ModelFamily,
    corpus: Path,
    *,
    size: str = "tiny",
    max_seq_len: int = 32,
    max_steps: int = 30,
    compile: bool = False,
    init_from: str | None = None,
) -> ModelTrainConfig:
    """30 CPU steps of 8 x 32 tokens, logging every 5 and checkpointing every 10."""
    return make_train_config(
        model_family=family,
        model_size=size,
        corpus_path=str(corpus),
        options={
            **TRAIN_DEFAULTS,
            "max_seq_len": max_seq_len,
            "batch_size": 8,
            "learning_rate": 1e-2,
            "max_steps": max_steps,
            "log_every_steps": 5,
            "checkpoint_every_steps": 10,
            "device": "cpu",
            "compile": compile,
            "init_from": init_from,
        },
    )


def quiet_callbacks(progress: list[StepMetrics] | None = None) -> TrainingCallbacks:
    """Never cancelled; progress reports collected in `progress` when given."""
    return {
        "heartbeat": lambda _: None,
        "cancelled": lambda: False,
        "progress": None if progress is None else progress.append,
        "alert": None,
        "prune": None,
    }


def char_tokenizer() -> CharTokenizer:
    return CharTokenizer.build(SAMPLE_TEXT, "char-test")


def train_run(
    backend: CausalLMBackend,
    settings: Settings,
    cfg: ModelTrainConfig,
    run_id: str,
    *,
    callbacks: TrainingCallbacks | None = None,
    tokenizer: TokenizerHandle | None = None,
) -> tuple[PreparedLMModel, TrainOutcome, Path]:
    """Prepare and train into `$ARTIFACTS_ROOT/runs/{run_id}`, as a train job would."""
    prepared = backend.prepare(
        cfg, settings, tokenizer=char_tokenizer() if tokenizer is None else tokenizer
    )
    run_dir = settings["artifacts_root"] / "runs" / run_id
    outcome = backend.train(
        cfg,
        settings,
        corpus=read_corpus(cfg["corpus_path"], settings),
        run_dir=str(run_dir),
        prepared=prepared,
        callbacks=quiet_callbacks() if callbacks is None else callbacks,
    )
    return prepared, outcome, run_dir
