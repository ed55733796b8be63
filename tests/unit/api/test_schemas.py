"""Request defaults are the contracts' defaults: leaving a field out means the same everywhere."""

from __future__ import annotations

import inspect

import orjson
import pytest

from model_trainer import cli
from model_trainer.api.schemas import (
    EvalJobRequest,
    GenerateJobRequest,
    ScoreJobRequest,
    TokenizerJobRequest,
    TrainJobRequest,
    train_options,
    train_request_options,
)
from model_trainer.contracts.defaults import (
    make_eval_config,
    make_generate_config,
    make_score_config,
    make_tokenizer_config,
)
from model_trainer.contracts.train_config import TRAIN_DEFAULTS, TrainOptions
from model_trainer.errors import ModelTrainerError

# A value other than the default for every train option: a new option must be added here
# (mypy insists), and then the checks below prove the request model, the contract and the
# CLI agree on it.
NON_DEFAULT: TrainOptions = {
    "max_seq_len": 64,
    "num_epochs": 2,
    "batch_size": 8,
    "learning_rate": 0.01,
    "seed": 5,
    "device": "cpu",
    "precision": "fp32",
    "max_steps": 7,
    "time_budget_s": 9.5,
    "val_fraction": 0.2,
    "grad_clip": 0.5,
    "grad_accum_steps": 2,
    "weight_decay": 0.1,
    "beta2": 0.99,
    "lr_schedule": "constant",
    "warmup_steps": 3,
    "min_lr_ratio": 0.2,
    "log_every_steps": 4,
    "eval_every_steps": 6,
    "eval_max_batches": 7,
    "checkpoint_every_steps": 8,
    "keep_checkpoints": 3,
    "compile": True,
    "init_from": "ckpt",
    "keep_best_checkpoints": 3,
    "early_stopping_patience": 4,
    "early_stopping_min_delta": 0.01,
    "grad_norm_alert_max": 50.0,
    "grad_norm_alert_min": 0.001,
    "val_loss_spike_ratio": 0.5,
    "num_processes": 2,
}
# Train request fields that are not options: what to train and where its inputs come from.
TRAIN_TARGET_FIELDS = {
    "model_family",
    "model_size",
    "corpus_id",
    "corpus_path",
    "run_id",
    "tokenizer_id",
    "timeout_s",
    "priority",
    "continue_from",
}

MINIMAL_REQUESTS = {
    "eval": EvalJobRequest(run_id="r1"),
    "score": ScoreJobRequest(run_id="r1"),
    "generate": GenerateJobRequest(run_id="r1"),
    "tokenizer": TokenizerJobRequest(),
}
BUILDERS = {
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


def test_every_train_option_is_a_request_field_with_the_contracts_default() -> None:
    request = TrainJobRequest(model_family="char_lstm", model_size="tiny")
    assert {name: getattr(request, name) for name in TRAIN_DEFAULTS} == TRAIN_DEFAULTS
    assert set(vars(request)) - set(TRAIN_DEFAULTS) == TRAIN_TARGET_FIELDS
    assert train_request_options(request) == TRAIN_DEFAULTS
    assert set(NON_DEFAULT) == set(TRAIN_DEFAULTS)
    defaults: dict[str, object] = dict(TRAIN_DEFAULTS)
    assert all(value != defaults[name] for name, value in NON_DEFAULT.items())


def test_the_request_and_the_cli_carry_every_option_into_the_contract() -> None:
    request = TrainJobRequest(model_family="gpt2", model_size="tiny", **NON_DEFAULT)
    assert train_request_options(request) == NON_DEFAULT
    fields = [f"{name}={orjson.dumps(value).decode()}" for name, value in NON_DEFAULT.items()]
    args = cli.build_parser().parse_args(["local-train", *fields])
    assert cli.local_train_options(args) == NON_DEFAULT


def test_the_cli_refuses_unknown_or_mistyped_options() -> None:
    parser = cli.build_parser()
    with pytest.raises(ModelTrainerError) as unknown:
        cli.local_train_options(parser.parse_args(["local-train", "beta3=0.9"]))
    assert unknown.value.code == "INVALID_CONFIG" and unknown.value.details == {"field": "beta3"}
    with pytest.raises(ModelTrainerError) as mistyped:
        cli.local_train_options(parser.parse_args(["local-train", "batch_size=many"]))
    assert mistyped.value.details == {"field": "batch_size"}
    with pytest.raises(ModelTrainerError) as nested:
        train_options({**TRAIN_DEFAULTS, "device": "tpu"})
    assert nested.value.code == "INVALID_CONFIG" and "device" in nested.value.message
