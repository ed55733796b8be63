"""BPETokenizer: byte-level round trips for any text, specials, chunking, coverage, HF files."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.conftest import SAMPLE_TEXT
from tests.support.hf_tokenizers import auto_tokenizer, hf_decode, hf_token_ids
from tokenizers import Tokenizer, pre_tokenizers
from tokenizers.models import BPE
from transformers import PreTrainedTokenizerFast

from model_trainer.errors import ModelTrainerError
from model_trainer.tokenizers.bpe import CHUNK_CHARS, BPETokenizer, text_chunks
from model_trainer.tokenizers.hf_format import EOS_ID, PAD_ID, SPECIALS, UNK_ID

TOKENIZER = BPETokenizer.train(SAMPLE_TEXT, "bpe-test", vocab_size=300)
VARIED = [
    "To be, or not to be",
    "  leading spaces, trailing spaces  ",
    "line one\nline two\r\n\n\ttabbed\n",
    "naïve café — 日本語のテキスト 🎭🍌 \u200d\u0301",
    "literal specials stay text: <eos> <pad> <unk>",
    "\x00\x01\x7f control bytes",
    "",
]


@given(st.text())
def test_any_unicode_text_round_trips(text: str) -> None:
    assert TOKENIZER.decode(TOKENIZER.encode(text)) == text


@given(st.text(alphabet=st.sampled_from("ab \n\t.é🎭"), max_size=300), st.integers(1, 40))
def test_chunks_cut_only_where_tokens_cannot_change(text: str, size: int) -> None:
    chunks = list(text_chunks(text, size))
    assert "".join(chunks) == text
    assert all(chunks)
    chunked = [i for chunk in chunks for i in TOKENIZER.encode_with_offsets(chunk)[0]]
    assert chunked == TOKENIZER.encode_with_offsets(text)[0]


def test_a_long_text_encodes_in_chunks_exactly_as_in_one_piece() -> None:
    text = SAMPLE_TEXT * (2 * CHUNK_CHARS // len(SAMPLE_TEXT) + 1) + "tail\n \n"
    assert len(list(text_chunks(text))) > 1
    ids = TOKENIZER.encode(text)
    assert ids == TOKENIZER.encode_with_offsets(text)[0]
    assert TOKENIZER.decode(ids) == text


def test_vocabulary_is_specials_then_bytes_then_merges() -> None:
    assert TOKENIZER.vocab_size == 300
    assert [TOKENIZER.id_to_token(i) for i in range(3)] == list(SPECIALS)
    assert (TOKENIZER.pad_id, TOKENIZER.eos_id, TOKENIZER.unk_id) == (PAD_ID, EOS_ID, UNK_ID)
    assert (TOKENIZER.kind, TOKENIZER.tokenizer_id) == ("bpe", "bpe-test")
    # the 256 byte tokens follow the specials; merges learned from the corpus come after
    assert TOKENIZER.id_to_token(3) == "!"
    (be,) = TOKENIZER.encode(" be")
    assert be >= 3 + 256
    assert TOKENIZER.id_to_token(be) == " be"


def test_literal_specials_in_text_are_text_and_decoding_drops_special_ids() -> None:
    text = "a <eos> b <pad> c <unk>"
    ids = TOKENIZER.encode(text)
    assert not {PAD_ID, EOS_ID, UNK_ID} & set(ids)
    assert TOKENIZER.decode([EOS_ID, *ids, PAD_ID, UNK_ID]) == text


def test_offsets_give_each_token_its_characters() -> None:
    text = "To be ü 🎭"
    ids, spans = TOKENIZER.encode_with_offsets(text)
    assert len(ids) == len(spans)
    assert spans[0] == (0, 2)  # "To" is one merged token
    # the emoji's four bytes are four tokens, each spanning the one character
    assert spans[-4:] == [(8, 9)] * 4
    assert TOKENIZER.decode(ids) == text


def test_a_small_corpus_stops_below_the_requested_size() -> None:
    tokenizer = BPETokenizer.train("ab" * 3, "tiny", vocab_size=1000)
    assert 259 < tokenizer.vocab_size < 1000
    assert tokenizer.decode(tokenizer.encode("xyz ab")) == "xyz ab"


def test_training_on_empty_text_is_refused() -> None:
    with pytest.raises(ModelTrainerError) as caught:
        BPETokenizer.train("", "t", vocab_size=300)
    assert caught.value.code == "CORPUS_EMPTY"


def test_a_trained_tokenizer_covers_every_character() -> None:
    assert TOKENIZER.coverage("") == 1.0
    assert TOKENIZER.coverage("日本語 🎭 never seen in training") == 1.0
    assert TOKENIZER.coverage(SAMPLE_TEXT * 20) == 1.0


def test_coverage_counts_the_characters_a_vocabulary_without_bytes_leaves_unknown() -> None:
    vocab = {"<pad>": 0, "<eos>": 1, "<unk>": 2, "a": 3}
    hf = Tokenizer(BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer = BPETokenizer("partial", hf)
    assert tokenizer.encode("aab") == [3, 3, UNK_ID]
    assert tokenizer.coverage("aab") == pytest.approx(2 / 3)
    assert tokenizer.coverage("ab" * CHUNK_CHARS) == pytest.approx(0.5)


@pytest.fixture(scope="module")
def transformers_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> PreTrainedTokenizerFast:
    """transformers' AutoTokenizer over the directory TOKENIZER.save wrote."""
    directory = tmp_path_factory.mktemp("bpe")
    TOKENIZER.save(directory)
    assert sorted(path.name for path in directory.iterdir()) == [
        "special_tokens_map.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "tokenizer_meta.json",
    ]
    return auto_tokenizer(directory)


def test_transformers_auto_tokenizer_gives_our_ids(
    transformers_tokenizer: PreTrainedTokenizerFast,
) -> None:
    hf = transformers_tokenizer
    assert (hf.pad_token_id, hf.eos_token_id, hf.bos_token_id, hf.unk_token_id) == (0, 1, 1, 2)
    for text in VARIED:
        ids = TOKENIZER.encode(text)
        assert hf_token_ids(hf, text) == ids, text
        assert hf_decode(hf, ids) == TOKENIZER.decode(ids) == text


@given(st.text(max_size=60))
def test_transformers_agrees_on_any_text(
    transformers_tokenizer: PreTrainedTokenizerFast, text: str
) -> None:
    assert hf_token_ids(transformers_tokenizer, text) == TOKENIZER.encode(text)
