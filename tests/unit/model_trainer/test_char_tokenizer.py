"""CharTokenizer: exact round trips, unk handling, specials, JSON form and coverage."""

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from model_trainer.errors import ModelTrainerError
from model_trainer.tokenizers.char import (
    EOS_ID,
    PAD_ID,
    SPECIALS,
    UNK_ID,
    UNKNOWN_CHAR,
    CharTokenizer,
)
from platform_core.json_types import PayloadError


@st.composite
def corpus_and_text(draw: st.DrawFn) -> tuple[str, str]:
    """A corpus, and a text written only with the corpus's characters."""
    corpus = draw(st.text(min_size=1, max_size=200))
    text = draw(st.text(alphabet=st.sampled_from(sorted(set(corpus))), max_size=200))
    return corpus, text


@given(corpus_and_text())
def test_round_trip_over_the_corpus_alphabet(case: tuple[str, str]) -> None:
    corpus, text = case
    tokenizer = CharTokenizer.build(corpus, "tok")
    ids = tokenizer.encode(text)
    assert len(ids) == len(text)
    assert UNK_ID not in ids
    assert all(len(SPECIALS) <= i < tokenizer.vocab_size for i in ids)
    assert tokenizer.decode(ids) == text
    assert tokenizer.decode(tokenizer.encode(corpus)) == corpus


@given(st.text(alphabet="abc", min_size=1), st.text(alphabet="xyz", min_size=1))
def test_unknown_characters_become_unk_and_decode_to_replacement(known: str, unknown: str) -> None:
    tokenizer = CharTokenizer.build(known, "tok")
    ids = tokenizer.encode(unknown)
    assert ids == [UNK_ID] * len(unknown)
    assert tokenizer.decode(ids) == UNKNOWN_CHAR * len(unknown)


def test_vocabulary_is_specials_then_characters_in_code_point_order() -> None:
    tokenizer = CharTokenizer.build("banana 🍌", "tok")
    assert tokenizer.vocab_size == 3 + 5
    tokens = [tokenizer.id_to_token(i) for i in range(tokenizer.vocab_size)]
    assert tokens == ["<pad>", "<eos>", "<unk>", " ", "a", "b", "n", "🍌"]
    assert tokenizer.encode("ban 🍌") == [5, 4, 6, 3, 7]


def test_unknowns_below_between_and_above_the_vocabulary() -> None:
    tokenizer = CharTokenizer.build("bdf", "tok")
    assert tokenizer.encode("abcdefg") == [UNK_ID, 3, UNK_ID, 4, UNK_ID, 5, UNK_ID]
    assert tokenizer.decode(tokenizer.encode("abcdefg")) == "\ufffdb\ufffdd\ufffdf\ufffd"


def test_specials_vanish_on_decode_except_unk() -> None:
    tokenizer = CharTokenizer.build("ab", "tok")
    a, b = tokenizer.encode("ab")
    assert tokenizer.decode([PAD_ID, a, EOS_ID, b, PAD_ID, EOS_ID]) == "ab"
    assert tokenizer.decode([a, UNK_ID, b]) == "a\ufffdb"


def test_empty_text_encodes_and_decodes_to_empty() -> None:
    tokenizer = CharTokenizer.build("ab", "tok")
    assert tokenizer.encode("") == []
    assert tokenizer.decode([]) == ""


def test_properties() -> None:
    tokenizer = CharTokenizer.build("hello", "char-abc")
    assert tokenizer.tokenizer_id == "char-abc"
    assert tokenizer.kind == "char"
    assert (tokenizer.pad_id, tokenizer.eos_id, tokenizer.unk_id) == (0, 1, 2)
    assert tokenizer.vocab_size == 3 + len(set("hello"))


def test_json_round_trip() -> None:
    tokenizer = CharTokenizer.build("To be, or not to be—🎭", "char-1")
    payload = tokenizer.to_json()
    assert orjson.loads(payload) == {
        "kind": "char",
        "tokenizer_id": "char-1",
        "chars": " ,Tbenort—🎭",
    }
    again = CharTokenizer.from_json(payload)
    assert again.tokenizer_id == "char-1"
    assert again.vocab_size == tokenizer.vocab_size
    assert again.encode("not to be🎭") == tokenizer.encode("not to be🎭")
    assert again.to_json() == payload
    assert CharTokenizer.from_json(payload.encode()).to_json() == payload


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b'{"kind": "bpe", "tokenizer_id": "t", "chars": "ab"}', "kind"),
        (b'{"kind": "char", "chars": "ab"}', "tokenizer_id"),
        (b'{"kind": "char", "tokenizer_id": "t", "chars": 3}', "chars"),
        (b"[]", "$"),
    ],
)
def test_from_json_rejects_bad_payloads(payload: bytes, field: str) -> None:
    with pytest.raises(PayloadError) as info:
        CharTokenizer.from_json(payload)
    assert info.value.field == field


def test_coverage_is_the_share_of_known_characters() -> None:
    tokenizer = CharTokenizer.build("ab", "tok")
    assert tokenizer.coverage("") == 1.0
    assert tokenizer.coverage("abab") == 1.0
    assert tokenizer.coverage("abcd") == 0.5
    assert tokenizer.coverage("xyz") == 0.0
    assert tokenizer.coverage("aab?") == pytest.approx(0.75)


def test_build_rejects_empty_text() -> None:
    with pytest.raises(ModelTrainerError) as info:
        CharTokenizer.build("", "tok")
    assert info.value.code == "CORPUS_EMPTY"
    assert info.value.http_status == 400


def test_from_json_rejects_an_empty_vocabulary() -> None:
    with pytest.raises(ModelTrainerError) as info:
        CharTokenizer.from_json(b'{"kind": "char", "tokenizer_id": "t", "chars": ""}')
    assert info.value.code == "TOKENIZER_LOAD_FAILED"
    assert info.value.details == {"field": "chars"}
