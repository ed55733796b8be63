"""One table of functions per backend, turned into a ModelBackend (seed 004 §4)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypedDict, TypeVar

from model_trainer.contracts.model import (
    EvalConfig,
    EvalOutcome,
    GenerateConfig,
    GenerateOutcome,
    ModelArtifact,
    ModelBackend,
    ModelFamily,
    ModelTrainConfig,
    PreparedLMModel,
    ScoreConfig,
    ScoreOutcome,
    TrainingCallbacks,
    TrainOutcome,
)
from model_trainer.contracts.tokenizer import TokenizerHandle
from model_trainer.settings import Settings

TBackendConfig = TypeVar("TBackendConfig")


class BackendFunctions(TypedDict, Generic[TBackendConfig]):
    """What a backend implements; `convert_config` turns the shared config into its own."""

    name: ModelFamily
    convert_config: Callable[[ModelTrainConfig], TBackendConfig]
    prepare: Callable[[TBackendConfig, Settings, TokenizerHandle], PreparedLMModel]
    train: Callable[
        [PreparedLMModel, TBackendConfig, Settings, str, TrainingCallbacks], TrainOutcome
    ]
    evaluate: Callable[[PreparedLMModel, EvalConfig, Settings], EvalOutcome]
    score: Callable[[PreparedLMModel, ScoreConfig, Settings], ScoreOutcome]
    generate: Callable[[PreparedLMModel, GenerateConfig, Settings], GenerateOutcome]
    save: Callable[[PreparedLMModel, str], ModelArtifact]
    load: Callable[[str, Settings], PreparedLMModel]


class _Backend(Generic[TBackendConfig]):
    def __init__(self, funcs: BackendFunctions[TBackendConfig]) -> None:
        self._f = funcs

    def name(self) -> ModelFamily:
        return self._f["name"]

    def prepare(
        self, cfg: ModelTrainConfig, settings: Settings, *, tokenizer: TokenizerHandle
    ) -> PreparedLMModel:
        return self._f["prepare"](self._f["convert_config"](cfg), settings, tokenizer)

    def train(
        self,
        cfg: ModelTrainConfig,
        settings: Settings,
        *,
        run_dir: str,
        prepared: PreparedLMModel,
        callbacks: TrainingCallbacks,
    ) -> TrainOutcome:
        backend_cfg = self._f["convert_config"](cfg)
        return self._f["train"](prepared, backend_cfg, settings, run_dir, callbacks)

    def evaluate(
        self, *, prepared: PreparedLMModel, cfg: EvalConfig, settings: Settings
    ) -> EvalOutcome:
        return self._f["evaluate"](prepared, cfg, settings)

    def score(
        self, *, prepared: PreparedLMModel, cfg: ScoreConfig, settings: Settings
    ) -> ScoreOutcome:
        return self._f["score"](prepared, cfg, settings)

    def generate(
        self, *, prepared: PreparedLMModel, cfg: GenerateConfig, settings: Settings
    ) -> GenerateOutcome:
        return self._f["generate"](prepared, cfg, settings)

    def save(self, prepared: PreparedLMModel, out_dir: str) -> ModelArtifact:
        return self._f["save"](prepared, out_dir)

    def load(self, artifact_path: str, settings: Settings) -> PreparedLMModel:
        return self._f["load"](artifact_path, settings)


def create_backend(funcs: BackendFunctions[TBackendConfig]) -> ModelBackend:
    return _Backend(funcs)
