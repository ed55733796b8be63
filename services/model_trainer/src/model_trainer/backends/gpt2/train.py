"""Train a GPT-2 through the shared loop."""

from __future__ import annotations

from model_trainer.backends.causal_lm import train_causal_lm
from model_trainer.backends.gpt2.config import GPT2TrainConfig
from model_trainer.backends.gpt2.io import save_gpt2
from model_trainer.backends.gpt2.model import as_gpt2
from model_trainer.contracts.model import PreparedLMModel, TrainingCallbacks, TrainOutcome
from model_trainer.settings import Settings
from model_trainer.training.device import compile_model, resolve_device


def train_gpt2(
    prepared: PreparedLMModel,
    cfg: GPT2TrainConfig,
    settings: Settings,
    run_dir: str,
    callbacks: TrainingCallbacks,
) -> TrainOutcome:
    module = as_gpt2(prepared["model"])
    train = cfg["train"]
    compile_model(module, resolve_device(train["device"]), enabled=train.get("compile", False))
    return train_causal_lm(
        prepared,
        module=module,
        cfg=train,
        settings=settings,
        run_dir=run_dir,
        callbacks=callbacks,
        save=save_gpt2,
    )
