"""Request defaults are the contracts' defaults: leaving a field out means the same everywhere."""

from __future__ import annotations

import inspect

import orjson
import pytest
from pydantic import TypeAdapter, ValidationError

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
from model_trainer.contracts.model import MODEL_FAMILIES, ModelFamily
from model_trainer.contracts.train_config import (
    FAMILY_TRAIN_DEFAULTS,
    TRAIN_DEFAULTS,
    FamilyTrainDefaults,
    TrainOptions,
    train_defaults,
)
from model_trainer.contracts.validators import parse_model_family
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
# Options whose default depends on the model family: null on the request until resolved.
FAMILY_OPTIONS = set(FamilyTrainDefaults.__required_keys__)
REQUEST = TypeAdapter(TrainJobRequest)
# Options whose default depends on the model family.
FAMILY_OPTIONS = set(FamilyTrainDefaults.__required_keys__)
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
    request = TrainJobRequest(model_family="gpt2", model_size="tiny")
    assert {name: getattr(request, name) for name in TRAIN_DEFAULTS} == TRAIN_DEFAULTS
    assert set(vars(request)) - set(TRAIN_DEFAULTS) == TRAIN_TARGET_FIELDS
    assert train_request_options(request) == TRAIN_DEFAULTS
    assert set(NON_DEFAULT) == set(TRAIN_DEFAULTS)
    defaults: dict[str, object] = dict(TRAIN_DEFAULTS)
    assert all(value != defaults[name] for name, value in NON_DEFAULT.items())


@pytest.mark.parametrize("family", MODEL_FAMILIES)
def test_a_request_gets_its_familys_defaults_in_python_and_over_http(
    family: ModelFamily,
) -> None:
    built = TrainJobRequest(model_family=family, model_size="tiny")
    sent = REQUEST.validate_json(orjson.dumps({"model_family": family, "model_size": "tiny"}))
    positional = TrainJobRequest(family, "tiny")
    for request in (built, sent, positional):
        assert train_request_options(request) == train_defaults(family)
    recipe: dict[str, object] = dict(FAMILY_TRAIN_DEFAULTS[family])
    assert {name: getattr(sent, name) for name in recipe} == recipe


def test_gpt2_keeps_the_shared_defaults_and_char_lstm_gets_its_recipe() -> None:
    gpt2 = TrainJobRequest(model_family="gpt2", model_size="nano")
    assert train_request_options(gpt2) == TRAIN_DEFAULTS
    lstm = train_request_options(TrainJobRequest(model_family="char_lstm", model_size="small"))
    assert lstm == {**TRAIN_DEFAULTS, **FAMILY_TRAIN_DEFAULTS["char_lstm"]}
    assert lstm["learning_rate"] > TRAIN_DEFAULTS["learning_rate"]
    assert lstm["batch_size"] < TRAIN_DEFAULTS["batch_size"]


def test_a_given_value_wins_over_the_familys_default() -> None:
    given = {
        "max_seq_len": 64,
        "batch_size": 64,
        "learning_rate": 1e-4,
        "beta2": 0.95,
        "warmup_steps": 0,
        "min_lr_ratio": 0.0,
    }
    built = TrainJobRequest(
        model_family="char_lstm",
        model_size="small",
        max_seq_len=64,
        batch_size=64,
        learning_rate=1e-4,
        beta2=0.95,
        warmup_steps=0,
        min_lr_ratio=0.0,
    )
    sent = REQUEST.validate_json(
        orjson.dumps({"model_family": "char_lstm", "model_size": "small", **given})
    )
    for request in (built, sent):
        assert {name: getattr(request, name) for name in given} == given


def test_family_options_keep_their_types_and_ranges() -> None:
    for bad in ({"batch_size": None}, {"learning_rate": 0.0}, {"warmup_steps": "5"}):
        body = {"model_family": "char_lstm", "model_size": "small", **bad}
        with pytest.raises(ValidationError):
            REQUEST.validate_json(orjson.dumps(body))
    with pytest.raises(ValidationError):
        REQUEST.validate_python(["char_lstm"])


def test_an_unknown_family_gets_the_shared_defaults_until_it_is_refused() -> None:
    request = TrainJobRequest(model_family="rnn", model_size="tiny")
    assert request.learning_rate == TRAIN_DEFAULTS["learning_rate"]
    with pytest.raises(ModelTrainerError) as refused:
        train_defaults(parse_model_family(request.model_family))
    assert refused.value.code == "UNKNOWN_MODEL_FAMILY"


def test_openapi_names_each_familys_default_instead_of_one() -> None:
    properties = REQUEST.json_schema()["properties"]
    for name in FAMILY_OPTIONS:
        assert "default" not in properties[name], name
        assert "default: the family's (char_lstm " in properties[name]["description"], name
    lstm, gpt2 = (FAMILY_TRAIN_DEFAULTS[f]["learning_rate"] for f in ("char_lstm", "gpt2"))
    assert f"char_lstm {lstm:g}, gpt2 {gpt2:g}" in properties["learning_rate"]["description"]
    assert properties["seed"]["default"] == TRAIN_DEFAULTS["seed"]


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
