"""Request defaults are the contracts' defaults: leaving a field out means the same everywhere."""

from __future__ import annotations

import inspect

import pytest

from model_trainer.api.schemas import (
    EvalJobRequest,
    GenerateJobRequest,
    ScoreJobRequest,
    TokenizerJobRequest,
    TrainJobRequest,
)
from model_trainer.contracts.defaults import (
    make_eval_config,
    make_generate_config,
    make_score_config,
    make_tokenizer_config,
    make_train_config,
)

MINIMAL_REQUESTS = {
    "train": TrainJobRequest(model_family="char_lstm", model_size="tiny"),
    "eval": EvalJobRequest(run_id="r1"),
    "score": ScoreJobRequest(run_id="r1"),
    "generate": GenerateJobRequest(run_id="r1"),
    "tokenizer": TokenizerJobRequest(),
}
BUILDERS = {
    "train": inspect.signature(make_train_config),
    "eval": inspect.signature(make_eval_config),
    "score": inspect.signature(make_score_config),
    "generate": inspect.signature(make_generate_config),
    "tokenizer": inspect.signature(make_tokenizer_config),
}


@pytest.mark.parametrize("job_type", list(BUILDERS))
def test_every_config_field_has_the_builders_default(job_type: str) -> None:
    parameters = BUILDERS[job_type].parameters.values()
    defaults = {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}
    assert defaults
    request = MINIMAL_REQUESTS[job_type]
    assert {name: getattr(request, name) for name in defaults} == defaults


@pytest.mark.parametrize("job_type", list(BUILDERS))
def test_every_builder_argument_is_a_request_field(job_type: str) -> None:
    names = set(BUILDERS[job_type].parameters)
    # corpus_path is resolved by the API (from corpus_id, corpus_path or the run's manifest).
    assert names - {"corpus_path"} <= set(vars(MINIMAL_REQUESTS[job_type]))
