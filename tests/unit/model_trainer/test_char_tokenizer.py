"""CharTokenizer: exact round trips, unk handling, specials, a size cap, coverage, HF files."""

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.conftest import SAMPLE_TEXT
from tests.support.hf_tokenizers import auto_tokenizer, hf_decode, hf_token_ids
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast

from model_trainer.contracts.tokenizer import TokenizerMeta
from model_trainer.errors import ModelTrainerError
from model_trainer.tokenizers.char import (
    EOS_ID,
    PAD_ID,
    SPECIALS,
    UNK_ID,
    UNKNOWN_CHAR,
    CharTokenizer,
)
from model_trainer.tokenizers.hf_format import write_tokenizer_files
from model_trainer.tokenizers.store import load_tokenizer_dir

TOKENIZER = CharTokenizer.build(SAMPLE_TEXT, "char-sample")
VARIED = [
    "To be, or not to be",
    "line one\nline two\r\n\n\ttabbed\n",
    "unknown: xyz 日本語 🎭 é",
    "literal specials stay text: <eos> <pad> <unk>",
    "",
]


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


def test_encode_with_offsets_gives_one_character_per_token() -> None:
    ids, spans = TOKENIZER.encode_with_offsets("To 🎭")
    assert ids == TOKENIZER.encode("To 🎭")
    assert spans == [(0, 1), (1, 2), (2, 3), (3, 4)]


def test_a_size_cap_keeps_the_most_frequent_characters() -> None:
    tokenizer = CharTokenizer.build("aaabbc", "capped", vocab_size=5)
    assert [tokenizer.id_to_token(i) for i in range(tokenizer.vocab_size)] == [*SPECIALS, "a", "b"]
    assert tokenizer.encode("abc") == [3, 4, UNK_ID]
    assert tokenizer.coverage("aaabbc") == pytest.approx(5 / 6)
    # ties go to the lower code point; a cap above the alphabet keeps everything
    assert CharTokenizer.build("ba", "tie", vocab_size=4).id_to_token(3) == "a"
    assert CharTokenizer.build("ba", "all", vocab_size=100).vocab_size == 5


def test_a_cap_without_room_for_a_character_is_refused() -> None:
    with pytest.raises(ModelTrainerError) as info:
        CharTokenizer.build("abc", "tok", vocab_size=3)
    assert info.value.code == "INVALID_CONFIG"
    assert info.value.details == {"field": "vocab_size"}


def test_save_then_load_gives_the_same_tokenizer(tmp_path: Path) -> None:
    TOKENIZER.save(tmp_path)
    loaded = load_tokenizer_dir(tmp_path)
    assert isinstance(loaded, CharTokenizer)
    assert (loaded.tokenizer_id, loaded.kind, loaded.vocab_size) == (
        "char-sample",
        "char",
        TOKENIZER.vocab_size,
    )
    for text in VARIED:
        assert loaded.encode(text) == TOKENIZER.encode(text)


@pytest.fixture(scope="module")
def transformers_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> PreTrainedTokenizerFast:
    directory = tmp_path_factory.mktemp("char")
    TOKENIZER.save(directory)
    return auto_tokenizer(directory)


def test_transformers_auto_tokenizer_gives_our_ids_unknowns_included(
    transformers_tokenizer: PreTrainedTokenizerFast,
) -> None:
    hf = transformers_tokenizer
    assert (hf.pad_token_id, hf.eos_token_id, hf.bos_token_id, hf.unk_token_id) == (0, 1, 1, 2)
    for text in VARIED:
        ids = TOKENIZER.encode(text)
        assert hf_token_ids(hf, text) == ids, text
        # unk decodes to U+FFFD on both sides; skipping specials would drop it
        assert hf_decode(hf, ids, skip_special_tokens=False) == TOKENIZER.decode(ids)
    assert hf_decode(hf, [EOS_ID, *TOKENIZER.encode("To be"), PAD_ID]) == "To be"


@given(st.text(max_size=60))
def test_transformers_agrees_on_any_text(
    transformers_tokenizer: PreTrainedTokenizerFast, text: str
) -> None:
    assert hf_token_ids(transformers_tokenizer, text) == TOKENIZER.encode(text)


@pytest.mark.parametrize(
    "tokens",
    [[*SPECIALS, "ab"], [*SPECIALS, "b", "a"], list(SPECIALS)],
    ids=["multi-char-token", "not-code-point-order", "no-characters"],
)
def test_load_refuses_a_vocabulary_that_is_not_a_char_vocabulary(
    tmp_path: Path, tokens: list[str]
) -> None:
    vocab = {token: index for index, token in enumerate(tokens)}
    meta: TokenizerMeta = {"tokenizer_id": "bad", "kind": "char", "vocab_size": len(tokens)}
    write_tokenizer_files(tmp_path, Tokenizer(WordLevel(vocab, unk_token="<unk>")), meta)
    with pytest.raises(ModelTrainerError) as info:
        load_tokenizer_dir(tmp_path)
    assert info.value.code == "TOKENIZER_LOAD_FAILED"
    assert info.value.http_status == 500
