"""The gpt2 backend: presets, SDPA, fine-tuning, and run directories in Hugging Face's layout
that its Auto classes load as they are (the shared behaviour is in test_backends.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tests.support.backends import char_tokenizer, quiet_callbacks, train_cfg, train_run
from torch import nn
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    BertConfig,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedTokenizerBase,
)

from model_trainer.backends.char_lstm import BACKEND as CHAR_LSTM_BACKEND
from model_trainer.backends.gpt2 import ACTIVATION, GPT2LM, as_gpt2, gpt2_logits, hf_config
from model_trainer.backends.gpt2 import BACKEND as GPT2_BACKEND
from model_trainer.backends.presets import GPT2_SIZES, check_model_size, get_capabilities, gpt2_dims
from model_trainer.backends.registry import get_backend
from model_trainer.contracts.defaults import make_eval_config
from model_trainer.contracts.model import (
    PreparedLMModel,
    TrainOutcome,
)
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.corpora import read_corpus

PROBE = "To be, or not to be—ü"


@pytest.fixture
def trained(settings: Settings, corpus_path: Path) -> tuple[PreparedLMModel, TrainOutcome, Path]:
    return train_run(GPT2_BACKEND, settings, train_cfg("gpt2", corpus_path), "run-1")


def _logits(prepared: PreparedLMModel, text: str) -> torch.Tensor:
    ids = torch.tensor([prepared["tokenizer"].encode(text)])
    with torch.no_grad():
        logits: torch.Tensor = as_gpt2(prepared["model"]).eval()(ids)
    return logits


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    pairs = zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    return all(torch.equal(p, q) for p, q in pairs)


def test_registered_with_honest_capabilities() -> None:
    assert get_capabilities("gpt2") == {
        "supports_train": True,
        "supports_evaluate": True,
        "supports_score": True,
        "supports_generate": True,
        "supports_distributed": False,
        "supported_sizes": tuple(GPT2_SIZES),
    }
    assert get_backend("gpt2") is GPT2_BACKEND
    assert GPT2_BACKEND.family == "gpt2"
    for size in ("tiny", "nano", "small", "medium"):
        check_model_size("gpt2", size)
    with pytest.raises(ModelTrainerError) as caught:
        check_model_size("gpt2", "huge")
    assert caught.value.code == "INVALID_MODEL_SIZE"
    assert caught.value.http_status == 400


@pytest.mark.parametrize(
    ("size", "parameters"),
    # the published shapes: nanoGPT's CPU model, GPT-2 124M and 350M (with its 50257 tokens)
    [("nano", 0.83e6), ("small", 124.4e6), ("medium", 354.8e6)],
)
def test_size_presets_have_the_published_shapes(size: str, parameters: float) -> None:
    config = hf_config(gpt2_dims(size), char_tokenizer(), size)
    if size != "nano":
        config.vocab_size = 50257
    with torch.device("meta"):
        model = GPT2LMHeadModel(config)
    count = sum(p.numel() for p in model.parameters())
    assert count == pytest.approx(parameters, rel=0.01)
    assert gpt2_dims("nano") == {
        "n_layer": 4,
        "n_embd": 128,
        "n_head": 4,
        "n_positions": 256,
        "dropout": 0.0,
    }


def test_prepare_builds_the_size_preset_seeded_with_sdpa(
    settings: Settings, corpus_path: Path
) -> None:
    cfg = train_cfg("gpt2", corpus_path)
    a = GPT2_BACKEND.prepare(cfg, settings, tokenizer=char_tokenizer())
    b = GPT2_BACKEND.prepare(cfg, settings, tokenizer=char_tokenizer())
    model = as_gpt2(a["model"])
    config = model.hf.config
    assert (config.n_layer, config.n_embd, config.n_head, config.n_positions) == (2, 32, 2, 128)
    assert config.vocab_size == char_tokenizer().vocab_size
    assert (config.bos_token_id, config.eos_token_id, config.pad_token_id) == (1, 1, 0)
    assert model.hf.config._attn_implementation == "sdpa"
    assert a["model_family"] == "gpt2" and a["model_size"] == "tiny"
    assert a["tokenizer_id"] == "char-test" and a["max_seq_len"] == 128
    assert a["eos_id"] == 1 and a["pad_id"] == 0
    assert _same_weights(model, as_gpt2(b["model"]))
    # GPT-2 ties the output layer to the token embedding
    assert model.hf.lm_head.weight is model.hf.transformer.wte.weight
    # the tanh GELU as one kernel, a name Hugging Face's loader knows
    assert config.activation_function == ACTIVATION == "gelu_pytorch_tanh"


def _foreign_gpt2(dropout: float) -> GPT2LMHeadModel:
    """A GPT-2 configured as checkpoints from elsewhere are: `gelu_new`, dropout, no preset."""
    torch.manual_seed(7)
    config = GPT2Config(
        vocab_size=40,
        n_positions=32,
        n_embd=16,
        n_layer=2,
        n_head=4,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
        bos_token_id=1,
        eos_token_id=1,
    )
    assert config.activation_function == "gelu_new"
    hf = GPT2LMHeadModel(config)
    hf.set_attn_implementation("sdpa")
    return hf


def test_the_lean_forward_gives_hugging_faces_logits_exactly() -> None:
    model = GPT2LM(_foreign_gpt2(dropout=0.1), "custom").eval()
    hf = model.hf
    ids = torch.randint(0, 40, (3, 19), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        theirs: torch.Tensor = hf(input_ids=ids, use_cache=False).logits
        assert torch.equal(gpt2_logits(hf, ids), theirs)
        # a padding mask goes through Hugging Face's own forward, which honours it
        mask = torch.ones_like(ids)
        mask[0, :5] = 0
        masked: torch.Tensor = hf(input_ids=ids, attention_mask=mask, use_cache=False).logits
        ours = model(ids, attention_mask=mask)
    assert torch.equal(ours, masked)
    assert not torch.equal(ours[0], theirs[0]) and torch.equal(ours[1:], theirs[1:])


def test_the_lean_forward_drops_out_while_training_only() -> None:
    model = GPT2LM(_foreign_gpt2(dropout=0.5), "custom")
    ids = torch.randint(0, 40, (2, 11), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        first, second = model.train()(ids), model(ids)
        assert not torch.equal(first, second)
        assert torch.equal(model.eval()(ids), model(ids))


def test_unknown_size_and_too_long_sequences_are_coded_errors(
    settings: Settings, corpus_path: Path
) -> None:
    cfg = train_cfg("gpt2", corpus_path)
    cfg["model_size"] = "huge"
    with pytest.raises(ModelTrainerError) as size:
        GPT2_BACKEND.prepare(cfg, settings, tokenizer=char_tokenizer())
    assert size.value.code == "INVALID_MODEL_SIZE"
    with pytest.raises(ModelTrainerError) as long:
        GPT2_BACKEND.prepare(
            train_cfg("gpt2", corpus_path, max_seq_len=129), settings, tokenizer=char_tokenizer()
        )
    assert long.value.code == "INVALID_CONFIG"
    assert long.value.details == {"field": "max_seq_len"}
    assert "<= 128" in long.value.message


def test_transformers_auto_classes_load_a_run_directory_as_it_is(
    trained: tuple[PreparedLMModel, TrainOutcome, Path],
) -> None:
    prepared, _, run_dir = trained
    hf_tokenizer = AutoTokenizer.from_pretrained(run_dir)
    assert isinstance(hf_tokenizer, PreTrainedTokenizerBase)
    ids: list[int] = hf_tokenizer(PROBE)["input_ids"]
    assert ids == prepared["tokenizer"].encode(PROBE)
    assert hf_tokenizer.eos_token_id == prepared["eos_id"]
    hf_model = AutoModelForCausalLM.from_pretrained(run_dir)
    assert isinstance(hf_model, GPT2LMHeadModel)
    assert not hf_model.training
    with torch.no_grad():
        theirs: torch.Tensor = hf_model(torch.tensor([ids])).logits
    assert torch.equal(theirs, _logits(prepared, PROBE))


def test_a_checkpoint_saved_elsewhere_loads_with_an_unnamed_size(
    settings: Settings, trained: tuple[PreparedLMModel, TrainOutcome, Path]
) -> None:
    prepared, _, _ = trained
    elsewhere = settings["artifacts_root"] / "elsewhere"
    GPT2_BACKEND.save(prepared, str(elsewhere))
    config = json.loads((elsewhere / "config.json").read_text())
    del config["model_size"]
    (elsewhere / "config.json").write_text(json.dumps(config))
    loaded = GPT2_BACKEND.load(str(elsewhere), settings)
    assert loaded["model_size"] == "custom"
    assert torch.equal(_logits(loaded, PROBE), _logits(prepared, PROBE))


def test_the_compile_flag_is_ignored_on_cpu(settings: Settings, corpus_path: Path) -> None:
    plain = train_run(GPT2_BACKEND, settings, train_cfg("gpt2", corpus_path), "plain")[0]
    compiled_cfg = train_cfg("gpt2", corpus_path, compile=True)
    assert compiled_cfg["compile"] is True
    compiled = train_run(GPT2_BACKEND, settings, compiled_cfg, "compiled")[0]
    assert _same_weights(as_gpt2(plain["model"]), as_gpt2(compiled["model"]))


def _checkpoint(directory: Path, *, vocab_size: int, n_layer: int = 2) -> GPT2LMHeadModel:
    """A Hugging Face checkpoint such as a user brings: other special ids, no preset name."""
    torch.manual_seed(123)
    config = GPT2Config(
        vocab_size=vocab_size,
        n_positions=64,
        n_embd=32,
        n_layer=n_layer,
        n_head=2,
        bos_token_id=vocab_size - 1,
        eos_token_id=vocab_size - 1,
    )
    model = GPT2LMHeadModel(config)
    model.save_pretrained(directory)
    return model


def test_fine_tuning_starts_from_a_local_checkpoint(settings: Settings, corpus_path: Path) -> None:
    source = settings["data_root"] / "checkpoint"
    original = _checkpoint(source, vocab_size=char_tokenizer().vocab_size)
    cfg = train_cfg("gpt2", corpus_path, init_from=str(source))
    assert cfg["init_from"] == str(source)
    prepared = GPT2_BACKEND.prepare(cfg, settings, tokenizer=char_tokenizer())
    model = as_gpt2(prepared["model"])
    assert _same_weights(model.hf, original)
    assert prepared["max_seq_len"] == 64  # the checkpoint's context, not the preset's
    assert (model.hf.config.eos_token_id, model.hf.generation_config.eos_token_id) == (1, 1)
    run_dir = settings["artifacts_root"] / "runs" / "tuned"
    outcome = GPT2_BACKEND.train(
        cfg,
        settings,
        corpus=read_corpus(cfg["corpus_path"], settings),
        run_dir=str(run_dir),
        prepared=prepared,
        callbacks=quiet_callbacks(),
    )
    assert outcome["steps"] == 30
    assert not _same_weights(model.hf, original)
    tuned = GPT2_BACKEND.load(str(run_dir), settings)
    assert tuned["model_size"] == "tiny" and tuned["max_seq_len"] == 64
    # a finished run is itself a checkpoint to fine-tune further
    again = GPT2_BACKEND.prepare(
        train_cfg("gpt2", corpus_path, init_from=str(run_dir)), settings, tokenizer=char_tokenizer()
    )
    assert torch.equal(_logits(again, PROBE), _logits(tuned, PROBE))


def test_fine_tuning_refuses_incompatible_or_unreachable_checkpoints(
    settings: Settings, corpus_path: Path, tmp_path: Path
) -> None:
    def prepare(path: Path) -> ModelTrainerError:
        with pytest.raises(ModelTrainerError) as caught:
            GPT2_BACKEND.prepare(
                train_cfg("gpt2", corpus_path, init_from=str(path)),
                settings,
                tokenizer=char_tokenizer(),
            )
        return caught.value

    wrong_vocab = settings["data_root"] / "wrong-vocab"
    _checkpoint(wrong_vocab, vocab_size=50)
    assert prepare(wrong_vocab).code == "MODEL_INCOMPATIBLE"
    deeper = settings["data_root"] / "deeper"
    _checkpoint(deeper, vocab_size=char_tokenizer().vocab_size, n_layer=3)
    shape = prepare(deeper)
    assert shape.code == "MODEL_INCOMPATIBLE" and shape.details == {"field": "init_from"}
    assert prepare(settings["data_root"] / "absent").code == "MODEL_NOT_FOUND"
    outside = tmp_path / "outside"
    _checkpoint(outside, vocab_size=char_tokenizer().vocab_size)
    assert prepare(outside).code == "PATH_OUTSIDE_ROOT"


def test_a_foreign_model_is_refused(settings: Settings, corpus_path: Path) -> None:
    with pytest.raises(ModelTrainerError) as caught:
        as_gpt2(
            CHAR_LSTM_BACKEND.prepare(
                train_cfg("char_lstm", corpus_path), settings, tokenizer=char_tokenizer()
            )["model"]
        )
    assert caught.value.code == "MODEL_INCOMPATIBLE"
    config = hf_config(gpt2_dims("tiny"), char_tokenizer(), "tiny")
    model = GPT2LM(GPT2LMHeadModel(config), "tiny")
    assert as_gpt2(model) is model


def test_a_run_directory_is_hugging_faces_layout_with_tied_weights(
    settings: Settings, trained: tuple[PreparedLMModel, TrainOutcome, Path]
) -> None:
    prepared, _, run_dir = trained
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model_type"] == "gpt2" and config["model_size"] == "tiny"
    # tied weights count once
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["num_params"] == as_gpt2(prepared["model"]).hf.num_parameters()
    loaded = as_gpt2(GPT2_BACKEND.load(str(run_dir), settings)["model"])
    assert loaded.hf.config._attn_implementation == "sdpa"
    assert loaded.hf.lm_head.weight is loaded.hf.transformer.wte.weight


def test_load_refuses_foreign_and_corrupt_runs(
    settings: Settings, trained: tuple[PreparedLMModel, TrainOutcome, Path]
) -> None:
    _, _, run_dir = trained
    other = settings["artifacts_root"] / "other"
    GPT2_BACKEND.save(GPT2_BACKEND.load(str(run_dir), settings), str(other))
    # without a manifest there are no digests: safetensors itself refuses the bytes
    (other / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ModelTrainerError) as unreadable:
        GPT2_BACKEND.load(str(other), settings)
    assert unreadable.value.code == "MODEL_LOAD_FAILED"
    BertConfig(num_hidden_layers=1).save_pretrained(other)
    with pytest.raises(ModelTrainerError) as foreign:
        GPT2_BACKEND.load(str(other), settings)
    assert foreign.value.code == "MODEL_INCOMPATIBLE"
    assert "BertConfig" in foreign.value.message
    # a run's manifest refuses the same bytes before safetensors sees them
    (run_dir / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ModelTrainerError) as corrupt:
        GPT2_BACKEND.load(str(run_dir), settings)
    assert corrupt.value.code == "ARTIFACT_CORRUPT"


def test_evaluation_windows_must_fit_the_context(
    settings: Settings, corpus_path: Path, trained: tuple[PreparedLMModel, TrainOutcome, Path]
) -> None:
    prepared, _, _ = trained
    with pytest.raises(ModelTrainerError) as long:
        GPT2_BACKEND.evaluate(
            prepared=prepared,
            cfg=make_eval_config(corpus_path=str(corpus_path), max_seq_len=129),
            settings=settings,
        )
    assert long.value.code == "INVALID_CONFIG"
    assert long.value.details == {"field": "max_seq_len"}
