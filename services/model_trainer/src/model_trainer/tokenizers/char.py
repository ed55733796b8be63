"""A character tokenizer: one token per Unicode character seen in the training corpus."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tokenizers import Regex, Tokenizer, decoders, pre_tokenizers
from tokenizers.models import WordLevel

from model_trainer.contracts.tokenizer import MIN_CHAR_VOCAB_SIZE, TokenizerKind, TokenizerMeta
from model_trainer.errors import ModelTrainerError
from model_trainer.tokenizers.hf_format import (
    EOS_ID,
    PAD_ID,
    SPECIALS,
    UNK,
    UNK_ID,
    load_failed,
    read_hf_tokenizer,
    write_tokenizer_files,
)

__all__ = ["EOS_ID", "PAD_ID", "SPECIALS", "UNKNOWN_CHAR", "UNK_ID", "CharTokenizer"]

UNKNOWN_CHAR = "\ufffd"

Codepoints = np.ndarray[tuple[int], np.dtype[np.uint32]]


def _codepoints(text: str) -> Codepoints:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def _most_frequent(text: str, keep: int) -> str:
    """The `keep` most frequent characters (ties: the lower code point wins)."""
    codes, counts = np.unique(_codepoints(text), return_counts=True)
    order = np.lexsort((codes, -counts))[:keep]
    return "".join(chr(code) for code in codes[order].tolist())


class CharTokenizer:
    """Specials first (pad, eos, unk), then the corpus's characters in code-point order."""

    def __init__(self, tokenizer_id: str, chars: str) -> None:
        self._id = tokenizer_id
        self._chars = "".join(sorted(set(chars)))
        self._codes = _codepoints(self._chars)
        self._tokens: list[str] = [*SPECIALS, *self._chars]

    @classmethod
    def build(cls, text: str, tokenizer_id: str, *, vocab_size: int | None = None) -> CharTokenizer:
        """Every character of `text`, or with `vocab_size` (specials included) the most
        frequent ones; the others then encode to unk."""
        if not text:
            raise ModelTrainerError("CORPUS_EMPTY", "cannot build a tokenizer from empty text")
        if vocab_size is None:
            return cls(tokenizer_id, text)
        if vocab_size < MIN_CHAR_VOCAB_SIZE:
            raise ModelTrainerError(
                "INVALID_CONFIG",
                f"vocab_size must be >= {MIN_CHAR_VOCAB_SIZE} (specials and a character), "
                f"got {vocab_size}",
                details={"field": "vocab_size"},
            )
        return cls(tokenizer_id, _most_frequent(text, vocab_size - len(SPECIALS)))

    @classmethod
    def load(cls, directory: Path, meta: TokenizerMeta) -> CharTokenizer:
        """Read the vocabulary back from the Hugging Face `tokenizer.json` that save wrote."""
        vocab = read_hf_tokenizer(directory).get_vocab()
        chars = "".join(sorted(vocab, key=vocab.__getitem__)[len(SPECIALS) :])
        tokenizer = cls(meta["tokenizer_id"], chars)
        if not chars or tokenizer._vocab() != vocab:
            raise load_failed(
                directory, "a char vocabulary is specials, then characters in code-point order"
            )
        return tokenizer

    def save(self, directory: Path) -> None:
        """A WordLevel model over the same vocabulary behind a pre-tokenizer that isolates
        every character, so transformers gives exactly our ids (unknown characters included)."""
        hf = Tokenizer(WordLevel(self._vocab(), unk_token=UNK))
        hf.add_special_tokens(list(SPECIALS))
        hf.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
        hf.decoder = decoders.Sequence([decoders.Replace(UNK, UNKNOWN_CHAR), decoders.Fuse()])
        meta: TokenizerMeta = {
            "tokenizer_id": self._id,
            "kind": "char",
            "vocab_size": self.vocab_size,
        }
        write_tokenizer_files(directory, hf, meta)

    def _vocab(self) -> dict[str, int]:
        return {token: index for index, token in enumerate(self._tokens)}

    @property
    def tokenizer_id(self) -> str:
        return self._id

    @property
    def kind(self) -> TokenizerKind:
        return "char"

    @property
    def vocab_size(self) -> int:
        return len(self._tokens)

    @property
    def pad_id(self) -> int:
        return PAD_ID

    @property
    def eos_id(self) -> int:
        return EOS_ID

    @property
    def unk_id(self) -> int:
        return UNK_ID

    def encode(self, text: str) -> list[int]:
        """Vectorised lookup: a binary search over the sorted vocabulary's code points."""
        codes = _codepoints(text)
        index = np.searchsorted(self._codes, codes)
        clipped = np.minimum(index, len(self._codes) - 1)
        known = self._codes[clipped] == codes
        token_ids: list[int] = np.where(known, index + len(SPECIALS), UNK_ID).tolist()
        return token_ids

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        return self.encode(text), [(index, index + 1) for index in range(len(text))]

    def decode(self, ids: list[int]) -> str:
        """Specials vanish except unk, which shows as U+FFFD."""
        return "".join(self._char(i) for i in ids)

    def _char(self, token_id: int) -> str:
        if token_id == UNK_ID:
            return UNKNOWN_CHAR
        if token_id < len(SPECIALS):
            return ""
        return self._tokens[token_id]

    def id_to_token(self, token_id: int) -> str:
        return self._tokens[token_id]

    def coverage(self, text: str) -> float:
        """Share of the text's characters encoded without falling back to unk."""
        if not text:
            return 1.0
        ids = self.encode(text)
        return 1.0 - ids.count(UNK_ID) / len(ids)
