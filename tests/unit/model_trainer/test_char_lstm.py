"""The char-LSTM backend: its network, BPE tokens, per-token scores and sampling."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests.conftest import SAMPLE_TEXT
from tests.support.backends import char_tokenizer, quiet_callbacks, train_cfg, train_run

from model_trainer.backends import char_lstm
from model_trainer.backends.char_lstm import BACKEND as CHAR_LSTM_BACKEND
from model_trainer.backends.char_lstm import CharLSTMModel, as_char_lstm
from model_trainer.backends.gpt2 import BACKEND as GPT2_BACKEND
from model_trainer.backends.presets import char_lstm_dims
from model_trainer.contracts.defaults import (
    make_generate_config,
    make_score_config,
)
from model_trainer.contracts.model import (
    PreparedLMModel,
    TrainOutcome,
)
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.corpora import read_corpus
from model_trainer.tokenizers.bpe import BPETokenizer


@pytest.fixture
def trained(settings: Settings, corpus_path: Path) -> tuple[PreparedLMModel, TrainOutcome, Path]:
    return train_run(CHAR_LSTM_BACKEND, settings, train_cfg("char_lstm", corpus_path), "run-1")


def test_prepare_builds_the_size_preset_seeded(settings: Settings, corpus_path: Path) -> None:
    cfg = train_cfg("char_lstm", corpus_path)
    a = CHAR_LSTM_BACKEND.prepare(cfg, settings, tokenizer=char_tokenizer())
    b = CHAR_LSTM_BACKEND.prepare(cfg, settings, tokenizer=char_tokenizer())
    model = as_char_lstm(a["model"])
    assert model.embed.embedding_dim == char_lstm_dims("tiny")["embed_dim"]
    assert model.head.out_features == char_tokenizer().vocab_size
    assert a["tokenizer_id"] == "char-test" and a["max_seq_len"] == 32
    assert a["eos_id"] == 1 and a["pad_id"] == 0
    assert CHAR_LSTM_BACKEND.family == "char_lstm"
    for p, q in zip(model.parameters(), as_char_lstm(b["model"]).parameters(), strict=True):
        assert torch.equal(p, q)


def test_unknown_size_is_a_coded_error(settings: Settings, corpus_path: Path) -> None:
    cfg = train_cfg("char_lstm", corpus_path)
    cfg["model_size"] = "huge"
    with pytest.raises(ModelTrainerError) as caught:
        CHAR_LSTM_BACKEND.prepare(cfg, settings, tokenizer=char_tokenizer())
    assert caught.value.code == "INVALID_MODEL_SIZE"


def test_a_bpe_tokenizer_trains_scores_per_token_and_comes_back_on_load(
    settings: Settings, corpus_path: Path
) -> None:
    tokenizer = BPETokenizer.train(SAMPLE_TEXT, "bpe-test", vocab_size=300)
    cfg = train_cfg("char_lstm", corpus_path, max_steps=10)
    prepared = CHAR_LSTM_BACKEND.prepare(cfg, settings, tokenizer=tokenizer)
    assert as_char_lstm(prepared["model"]).head.out_features == tokenizer.vocab_size
    run_dir = settings["artifacts_root"] / "runs" / "bpe"
    CHAR_LSTM_BACKEND.train(
        cfg,
        settings,
        corpus=read_corpus(cfg["corpus_path"], settings),
        run_dir=str(run_dir),
        prepared=prepared,
        callbacks=quiet_callbacks(),
    )
    text = "To be, or not to be—ü 🎭"
    ids, spans = tokenizer.encode_with_offsets(text)
    assert len(ids) < len(text)  # merges: fewer tokens than characters
    loaded = CHAR_LSTM_BACKEND.load(str(run_dir), settings)
    assert (loaded["tokenizer"].kind, loaded["tokenizer_id"]) == ("bpe", "bpe-test")
    outcome = CHAR_LSTM_BACKEND.score(
        prepared=loaded,
        cfg=make_score_config(text=text, detail_level="per_char"),
        settings=settings,
    )
    per_token = outcome["per_token"]
    assert per_token is not None and outcome["num_tokens"] == len(ids)
    assert [entry["token"] for entry in per_token] == [text[a:b] for a, b in spans]
    assert [(entry.get("start"), entry.get("end")) for entry in per_token] == spans
    generated = CHAR_LSTM_BACKEND.generate(
        prepared=loaded,
        cfg=make_generate_config(prompt_text="To be", max_new_tokens=5, seed=1),
        settings=settings,
    )
    assert generated["outputs"][0].startswith("To be")


def test_per_char_score_has_one_entry_per_character_with_sorted_alternatives(
    settings: Settings, trained: tuple[PreparedLMModel, TrainOutcome, Path]
) -> None:
    prepared, _, _ = trained
    text = "To be, or not to be—ü"
    outcome = CHAR_LSTM_BACKEND.score(
        prepared=prepared,
        cfg=make_score_config(text=text, detail_level="per_char", top_k=4),
        settings=settings,
    )
    per_token = outcome["per_token"]
    assert per_token is not None
    assert [entry["token"] for entry in per_token] == list(text)
    assert [(entry.get("start"), entry.get("end")) for entry in per_token] == [
        (i, i + 1) for i in range(len(text))
    ]
    assert outcome["num_tokens"] == len(text)
    for entry in per_token:
        probs = [alt["prob"] for alt in entry["top_k"]]
        assert len(probs) == 4
        assert probs == sorted(probs, reverse=True)
        assert 0.0 < entry["prob"] <= 1.0
        assert entry["surprisal"] == pytest.approx(
            -torch.tensor(entry["prob"]).log2().item(), rel=1e-4
        )
    mean_nll = sum(-torch.tensor(e["prob"]).log().item() for e in per_token) / len(text)
    assert outcome["loss"] == pytest.approx(mean_nll, rel=1e-4)
    summary = CHAR_LSTM_BACKEND.score(
        prepared=prepared, cfg=make_score_config(text=text), settings=settings
    )
    assert summary["per_token"] is None
    assert summary["loss"] == pytest.approx(outcome["loss"])


def test_score_reads_a_path_under_the_data_root_and_rejects_empty_text(
    settings: Settings, trained: tuple[PreparedLMModel, TrainOutcome, Path]
) -> None:
    prepared, _, _ = trained
    (settings["data_root"] / "s.txt").write_text("To be")
    from_file = CHAR_LSTM_BACKEND.score(
        prepared=prepared,
        cfg=make_score_config(path=str(settings["data_root"] / "s.txt"), detail_level="per_char"),
        settings=settings,
    )
    assert from_file["num_tokens"] == 5
    assert from_file["per_token"] is not None and len(from_file["per_token"][0]["top_k"]) == 5
    with pytest.raises(ModelTrainerError) as empty:
        CHAR_LSTM_BACKEND.score(
            prepared=prepared, cfg=make_score_config(text=""), settings=settings
        )
    assert empty.value.code == "INVALID_CONFIG"
    with pytest.raises(ModelTrainerError) as missing:
        CHAR_LSTM_BACKEND.score(
            prepared=prepared,
            cfg=make_score_config(path=str(settings["data_root"] / "nope.txt")),
            settings=settings,
        )
    assert missing.value.code == "CORPUS_NOT_FOUND"


def test_generate_with_the_same_seed_gives_the_same_text(
    settings: Settings, trained: tuple[PreparedLMModel, TrainOutcome, Path]
) -> None:
    prepared, _, _ = trained
    cfg = make_generate_config(
        prompt_text="To be", max_new_tokens=40, seed=7, num_return_sequences=3, top_k=10, top_p=0.9
    )
    first = CHAR_LSTM_BACKEND.generate(prepared=prepared, cfg=cfg, settings=settings)
    second = CHAR_LSTM_BACKEND.generate(prepared=prepared, cfg=cfg, settings=settings)
    assert first == second
    assert len(first["outputs"]) == 3
    assert all(text.startswith("To be") for text in first["outputs"])
    assert len(set(first["outputs"])) > 1  # sequences sample independently
    other = CHAR_LSTM_BACKEND.generate(prepared=prepared, cfg={**cfg, "seed": 8}, settings=settings)
    assert other["outputs"] != first["outputs"]


def test_batched_generation_matches_one_sequence_fed_token_by_token(
    settings: Settings, trained: tuple[PreparedLMModel, TrainOutcome, Path]
) -> None:
    """The carried state gives exactly what recomputing the whole prefix would (greedy)."""
    prepared, _, _ = trained
    cfg = make_generate_config(
        prompt_text="Or to", max_new_tokens=25, top_k=1, seed=0, stop_on_eos=False
    )
    out = CHAR_LSTM_BACKEND.generate(prepared=prepared, cfg=cfg, settings=settings)
    model = as_char_lstm(prepared["model"])
    tokenizer = prepared["tokenizer"]
    ids = [prepared["eos_id"], *tokenizer.encode("Or to")]
    with torch.no_grad():
        for _ in range(25):
            logits = model(torch.tensor([ids]))
            ids.append(int(logits[0, -1].argmax()))
    assert out["outputs"] == ["Or to" + tokenizer.decode(ids[6:])]
    assert out["new_tokens"] == [25]


def test_generation_stops_each_sequence_at_eos(
    settings: Settings, trained: tuple[PreparedLMModel, TrainOutcome, Path]
) -> None:
    prepared, _, _ = trained
    model = as_char_lstm(prepared["model"])
    with torch.no_grad():  # make eos the only likely token after any input
        model.head.bias.fill_(-100.0)
        model.head.bias[prepared["eos_id"]] = 100.0
    cfg = make_generate_config(prompt_text="To", max_new_tokens=10, seed=1, num_return_sequences=2)
    out = CHAR_LSTM_BACKEND.generate(prepared=prepared, cfg=cfg, settings=settings)
    assert out == {"outputs": ["To", "To"], "new_tokens": [0, 0], "finished_on_eos": [True, True]}
    keep_going = CHAR_LSTM_BACKEND.generate(
        prepared=prepared, cfg={**cfg, "stop_on_eos": False}, settings=settings
    )
    assert keep_going["new_tokens"] == [10, 10]
    assert keep_going["finished_on_eos"] == [False, False]


def test_a_foreign_model_is_refused(settings: Settings, corpus_path: Path) -> None:
    with pytest.raises(ModelTrainerError) as caught:
        as_char_lstm(
            GPT2_BACKEND.prepare(
                train_cfg("gpt2", corpus_path), settings, tokenizer=char_tokenizer()
            )["model"]
        )
    assert caught.value.code == "MODEL_INCOMPATIBLE"
    assert isinstance(
        as_char_lstm(
            CharLSTMModel(
                {
                    "model_family": "char_lstm",
                    "model_size": "tiny",
                    "vocab_size": 5,
                    "max_seq_len": 4,
                    "embed_dim": 2,
                    "hidden_dim": 2,
                    "num_layers": 1,
                    "dropout": 0.0,
                }
            )
        ),
        CharLSTMModel,
    )


def _small_model(num_layers: int) -> CharLSTMModel:
    return CharLSTMModel(
        {
            "model_family": "char_lstm",
            "model_size": "test",
            "vocab_size": 30,
            "max_seq_len": 64,
            "embed_dim": 8,
            "hidden_dim": 16,
            "num_layers": num_layers,
            "dropout": 0.1,
        }
    )


@pytest.mark.parametrize("num_layers", [1, 2])
def test_the_sampling_decoder_carries_the_state_the_whole_sequence_would(num_layers: int) -> None:
    """One token at a time through the cells gives the logits the full forward pass gives."""
    model = _small_model(num_layers).eval()
    ids = torch.randint(0, 30, (3, 10), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        whole = model(ids)
        decode = model.decoder()
        fed = [decode(ids[:, :4]), *(decode(ids[:, t : t + 1]) for t in range(4, 10))]
    torch.testing.assert_close(torch.cat(fed, dim=1), whole, rtol=1e-5, atol=1e-5)


def test_the_sampling_decoder_takes_the_sequence_path_while_training() -> None:
    """In training mode (dropout between layers) a single token still goes through nn.LSTM."""
    model = _small_model(1).train()
    prompt = torch.tensor([[1, 2, 3]])
    _, state = model.step(prompt, None)
    token = torch.tensor([[4]])
    logits, (hidden, cell) = model.sampling_step()(token, state)
    expected, (expected_hidden, expected_cell) = model.step(token, state)
    assert torch.equal(logits, expected)
    assert torch.equal(hidden, expected_hidden) and torch.equal(cell, expected_cell)


@pytest.mark.parametrize("bf16_lstm", [True, False])
def test_cpu_autocast_runs_the_recurrence_in_bf16_only_where_onednn_does_it_natively(
    monkeypatch: pytest.MonkeyPatch, bf16_lstm: bool
) -> None:
    monkeypatch.setattr(char_lstm, "BF16_LSTM_ON_CPU", bf16_lstm)
    model = CharLSTMModel(
        {
            "model_family": "char_lstm",
            "model_size": "tiny",
            "vocab_size": 11,
            "max_seq_len": 8,
            **char_lstm_dims("tiny"),
        }
    )
    recurrence: list[torch.dtype] = []
    model.lstm.register_forward_hook(lambda _m, _args, out: recurrence.append(out[0].dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(torch.arange(8).reshape(2, 4))
    assert recurrence == [torch.bfloat16 if bf16_lstm else torch.float32]
    assert logits.dtype == torch.bfloat16 and logits.shape == (2, 4, 11)
