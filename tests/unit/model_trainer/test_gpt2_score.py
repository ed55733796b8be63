"""gpt2 scoring: per-token probabilities with character offsets, and texts longer than the
model's context scored in sliding windows."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from tests.conftest import SAMPLE_TEXT

from model_trainer.backends.causal_lm import score_windows
from model_trainer.backends.gpt2 import BACKEND as GPT2_BACKEND
from model_trainer.backends.gpt2 import as_gpt2
from model_trainer.contracts.defaults import make_score_config
from model_trainer.contracts.model import PreparedLMModel, ScoreOutcome, TokenScore
from model_trainer.contracts.tokenizer import TokenizerHandle
from model_trainer.contracts.train_config import TRAIN_DEFAULTS, make_train_config
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.tokenizers.bpe import BPETokenizer
from model_trainer.tokenizers.char import CharTokenizer

CONTEXT = 128  # the tiny preset's


def _prepared(settings: Settings, tokenizer: TokenizerHandle) -> PreparedLMModel:
    """A seeded, untrained tiny gpt2: scoring is arithmetic, whatever the weights."""
    cfg = make_train_config(
        model_family="gpt2",
        model_size="tiny",
        corpus_path=str(settings["data_root"] / "unused.txt"),
        options={**TRAIN_DEFAULTS, "device": "cpu"},
    )
    return GPT2_BACKEND.prepare(cfg, settings, tokenizer=tokenizer)


@pytest.fixture
def char_model(settings: Settings) -> PreparedLMModel:
    return _prepared(settings, CharTokenizer.build(SAMPLE_TEXT, "char-test"))


def _score(
    prepared: PreparedLMModel, settings: Settings, text: str, top_k: int | None = None
) -> ScoreOutcome:
    cfg = make_score_config(text=text, detail_level="per_char", top_k=top_k)
    return GPT2_BACKEND.score(prepared=prepared, cfg=cfg, settings=settings)


def _entries(outcome: ScoreOutcome) -> list[TokenScore]:
    per_token = outcome["per_token"]
    assert per_token is not None
    return per_token


def _target_log_probs(prepared: PreparedLMModel, tokens: list[int]) -> list[float]:
    """Log-probabilities of tokens[1:] from one forward pass over all of them."""
    model = as_gpt2(prepared["model"]).eval()
    with torch.no_grad():
        logits = model(torch.tensor([tokens[:-1]]))[0]
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    picked: list[float] = log_probs.gather(1, torch.tensor(tokens[1:])[:, None]).squeeze(1).tolist()
    return picked


def test_per_char_score_gives_offsets_alternatives_and_the_mean_loss(
    settings: Settings, char_model: PreparedLMModel
) -> None:
    text = "To be, or not to be—ü"
    outcome = _score(char_model, settings, text, top_k=4)
    entries = _entries(outcome)
    assert [entry["token"] for entry in entries] == list(text)
    assert [(entry["start"], entry["end"]) for entry in entries] == [
        (i, i + 1) for i in range(len(text))
    ]
    assert outcome["num_tokens"] == len(text)
    for entry in entries:
        probs = [alt["prob"] for alt in entry["top_k"]]
        assert len(probs) == 4 and probs == sorted(probs, reverse=True)
        assert entry["surprisal"] == pytest.approx(-math.log2(entry["prob"]), rel=1e-4)
    expected = _target_log_probs(char_model, [1, *char_model["tokenizer"].encode(text)])
    assert [math.log(e["prob"]) for e in entries] == pytest.approx(expected, abs=1e-5)
    assert outcome["loss"] == pytest.approx(-sum(expected) / len(text), rel=1e-5)
    assert outcome["perplexity"] == pytest.approx(math.exp(outcome["loss"]))
    summary = GPT2_BACKEND.score(
        prepared=char_model, cfg=make_score_config(text=text), settings=settings
    )
    assert summary["per_token"] is None
    assert summary["loss"] == pytest.approx(outcome["loss"])


def test_byte_level_tokens_carry_the_character_spans_they_encode(settings: Settings) -> None:
    tokenizer = BPETokenizer.train(SAMPLE_TEXT, "bpe-test", vocab_size=300)
    prepared = _prepared(settings, tokenizer)
    text = "naïve café — 日本語 To be"
    entries = _entries(_score(prepared, settings, text))
    ids, spans = tokenizer.encode_with_offsets(text)
    assert len(entries) == len(ids) > len(text.split())
    assert [(e["start"], e["end"]) for e in entries] == spans
    assert all(e["token"] == text[e["start"] : e["end"]] for e in entries)
    # the three bytes of 日 are three tokens, each with the character's span
    assert [e["token"] for e in entries].count("日") == 3
    assert entries[-1]["token"] == " be"


@pytest.mark.parametrize("count", [1, 5, CONTEXT, CONTEXT + 1, 3 * CONTEXT + 17])
def test_windows_score_every_target_once_with_at_least_half_a_context(count: int) -> None:
    seen: list[int] = []
    for start, low, high in score_windows(count, CONTEXT):
        assert 0 <= start <= low < high <= count
        assert high - start <= CONTEXT
        if start > 0:
            assert low - start >= CONTEXT // 2
        seen.extend(range(low, high))
    assert seen == list(range(count))


def test_a_text_longer_than_the_context_is_scored_in_windows(
    settings: Settings, char_model: PreparedLMModel
) -> None:
    text = SAMPLE_TEXT[: 2 * CONTEXT + 40]
    outcome = _score(char_model, settings, text)
    entries = _entries(outcome)
    assert [e["token"] for e in entries] == list(text)
    assert [e["end"] for e in entries] == list(range(1, len(text) + 1))
    tokens = [1, *char_model["tokenizer"].encode(text)]
    log_probs = [math.log(e["prob"]) for e in entries]
    # the first window is one pass from the start; the last sees the context before it
    assert log_probs[:CONTEXT] == pytest.approx(
        _target_log_probs(char_model, tokens[: CONTEXT + 1]), abs=1e-5
    )
    *_, (start, low, high) = score_windows(len(text), CONTEXT)
    last = _target_log_probs(char_model, tokens[start : high + 1])[low - start :]
    assert log_probs[low:] == pytest.approx(last, abs=1e-5)
    assert outcome["loss"] == pytest.approx(-sum(log_probs) / len(text), rel=1e-5)


def test_score_reads_a_path_and_rejects_empty_text(
    settings: Settings, char_model: PreparedLMModel
) -> None:
    path: Path = settings["data_root"] / "s.txt"
    path.write_text("To be")
    from_file = GPT2_BACKEND.score(
        prepared=char_model, cfg=make_score_config(path=str(path)), settings=settings
    )
    assert from_file["num_tokens"] == 5
    with pytest.raises(ModelTrainerError) as empty:
        _score(char_model, settings, "")
    assert empty.value.code == "INVALID_CONFIG"


def test_a_cancelled_score_stops_between_windows(
    settings: Settings, char_model: PreparedLMModel
) -> None:
    text = SAMPLE_TEXT[: 4 * CONTEXT]
    asked: list[bool] = []

    def second_window_stops() -> bool:
        asked.append(len(asked) == 1)
        return asked[-1]

    never = GPT2_BACKEND.score(
        prepared=char_model,
        cfg=make_score_config(text=text),
        settings=settings,
        should_stop=lambda: False,
    )
    assert never["num_tokens"] == len(text)
    with pytest.raises(ModelTrainerError) as caught:
        GPT2_BACKEND.score(
            prepared=char_model,
            cfg=make_score_config(text=text),
            settings=settings,
            should_stop=second_window_stops,
        )
    assert caught.value.code == "TRAINING_CANCELLED"
    assert caught.value.message == f"scoring cancelled after {CONTEXT} of {len(text)} tokens"
    assert asked == [False, True]
