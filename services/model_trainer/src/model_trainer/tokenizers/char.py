"""A character tokenizer: one token per Unicode character seen in the training corpus."""

from __future__ import annotations

import numpy as np
import orjson

from model_trainer.contracts.tokenizer import TokenizerKind
from model_trainer.errors import ModelTrainerError
from platform_core.json_types import load_json_object, require_literal, require_str

SPECIALS = ("<pad>", "<eos>", "<unk>")
PAD_ID, EOS_ID, UNK_ID = 0, 1, 2
UNKNOWN_CHAR = "\ufffd"


def _codepoints(text: str) -> np.ndarray[tuple[int], np.dtype[np.uint32]]:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


class CharTokenizer:
    """Specials first (pad, eos, unk), then the corpus's characters in code-point order."""

    def __init__(self, tokenizer_id: str, chars: str) -> None:
        self._id = tokenizer_id
        self._chars = "".join(sorted(set(chars)))
        self._codes = _codepoints(self._chars)
        self._tokens: list[str] = [*SPECIALS, *self._chars]

    @classmethod
    def build(cls, text: str, tokenizer_id: str) -> CharTokenizer:
        if not text:
            raise ModelTrainerError("CORPUS_EMPTY", "cannot build a tokenizer from empty text")
        return cls(tokenizer_id, text)

    @classmethod
    def from_json(cls, payload: str | bytes) -> CharTokenizer:
        obj = load_json_object(payload)
        require_literal(obj, "kind", ("char",))
        chars = require_str(obj, "chars")
        if not chars:
            raise ModelTrainerError(
                "TOKENIZER_LOAD_FAILED",
                "tokenizer chars must not be empty (build() never writes an empty vocabulary)",
                details={"field": "chars"},
            )
        return cls(require_str(obj, "tokenizer_id"), chars)

    def to_json(self) -> str:
        return orjson.dumps(
            {"kind": "char", "tokenizer_id": self._id, "chars": self._chars}
        ).decode()

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
