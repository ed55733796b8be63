"""Byte-level BPE (GPT-2's scheme) trained with Hugging Face `tokenizers`.

The initial alphabet is all 256 bytes, so every text encodes without unknowns and
`decode(encode(text)) == text` for any Unicode text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from tokenizers import Tokenizer, decoders, pre_tokenizers
from tokenizers.models import BPE
from tokenizers.trainers import BpeTrainer

from model_trainer.contracts.tokenizer import TokenizerKind, TokenizerMeta
from model_trainer.errors import ModelTrainerError
from model_trainer.tokenizers.hf_format import (
    EOS_ID,
    PAD_ID,
    SPECIALS,
    UNK,
    UNK_ID,
    read_hf_tokenizer,
    write_tokenizer_files,
)

# A pair seen once is not worth a token: small corpora stop below the requested size.
MIN_PAIR_FREQUENCY = 2
CHUNK_CHARS = 1 << 16

# A newline between two printable ASCII characters always ends a GPT-2 pre-token and starts a
# new one with no look-behind, so cutting the text there changes no token.
_SAFE_CUT = re.compile(r"[!-~]\n(?=[!-~])")


def text_chunks(text: str, size: int = CHUNK_CHARS) -> Iterator[str]:
    """Pieces of about `size` characters, cut only where tokens cannot change, so a corpus
    trains and encodes on every core with exactly the result of one call on the whole text."""
    start = 0
    while start < len(text):
        cut = _SAFE_CUT.search(text, start + size)
        end = len(text) if cut is None else cut.end()
        yield text[start:end]
        start = end


class BPETokenizer:
    """Specials first (pad, eos, unk at 0, 1, 2), then the 256 byte tokens, then merges."""

    def __init__(self, tokenizer_id: str, hf: Tokenizer) -> None:
        self._id = tokenizer_id
        self._hf = hf
        # A literal "<eos>" in text is text, as in the character tokenizer.
        self._hf.encode_special_tokens = True

    @classmethod
    def train(cls, text: str, tokenizer_id: str, *, vocab_size: int) -> BPETokenizer:
        if not text:
            raise ModelTrainerError("CORPUS_EMPTY", "cannot train a tokenizer on empty text")
        hf = Tokenizer(BPE(unk_token=UNK))
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        hf.decoder = decoders.ByteLevel()
        trainer = BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=MIN_PAIR_FREQUENCY,
            special_tokens=list(SPECIALS),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        hf.train_from_iterator(text_chunks(text), trainer=trainer)
        return cls(tokenizer_id, hf)

    @classmethod
    def load(cls, directory: Path, meta: TokenizerMeta) -> BPETokenizer:
        return cls(meta["tokenizer_id"], read_hf_tokenizer(directory))

    def save(self, directory: Path) -> None:
        meta: TokenizerMeta = {
            "tokenizer_id": self._id,
            "kind": "bpe",
            "vocab_size": self.vocab_size,
        }
        write_tokenizer_files(directory, self._hf, meta)

    @property
    def tokenizer_id(self) -> str:
        return self._id

    @property
    def kind(self) -> TokenizerKind:
        return "bpe"

    @property
    def vocab_size(self) -> int:
        return self._hf.get_vocab_size()

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
        if len(text) <= CHUNK_CHARS:
            return self._hf.encode(text).ids
        encodings = self._hf.encode_batch(list(text_chunks(text)))
        return [token_id for encoding in encodings for token_id in encoding.ids]

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        encoding = self._hf.encode(text)
        return encoding.ids, encoding.offsets

    def decode(self, ids: list[int]) -> str:
        """Specials vanish; bytes that do not complete a character show as U+FFFD."""
        return self._hf.decode(ids, skip_special_tokens=True)

    def id_to_token(self, token_id: int) -> str:
        """The text a token stands for (a special shows its name), not its byte-level form."""
        return self._hf.decode([token_id], skip_special_tokens=False)

    def coverage(self, text: str) -> float:
        """Share of the text's characters encoded without falling back to unk: 1.0 for a
        trained tokenizer (every byte is in its alphabet), less for a vocabulary without it."""
        if not text:
            return 1.0
        unknown = 0
        for encoding in self._hf.encode_batch(list(text_chunks(text))):
            spans = zip(encoding.ids, encoding.offsets, strict=True)
            unknown += sum(end - start for i, (start, end) in spans if i == UNK_ID)
        return 1.0 - unknown / len(text)
