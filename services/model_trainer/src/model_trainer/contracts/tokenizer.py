"""What the training loop, backends and jobs need from a tokenizer."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal, Protocol, TypedDict

if TYPE_CHECKING:
    from pathlib import Path

TokenizerKind = Literal["char", "bpe"]
TOKENIZER_KINDS: tuple[TokenizerKind, ...] = ("char", "bpe")

# Ids name directories under $ARTIFACTS_ROOT/tokenizers: the alphabet keeps them inside it.
TOKENIZER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")

# Written by every TokenizerHandle.save; names the class that reads the directory back.
META_FILE = "tokenizer_meta.json"

# Byte-level BPE needs every byte (256) plus the three specials before its first merge.
MIN_BPE_VOCAB_SIZE = 259
MAX_VOCAB_SIZE = 1_000_000
# A BPE vocabulary sizes the model's embedding: 128k rows already outgrow GPT-2's 50k.
MAX_BPE_VOCAB_SIZE = 131_072
DEFAULT_BPE_VOCAB_SIZE = 8192
MIN_CHAR_VOCAB_SIZE = 4


class Encoder(Protocol):
    """Turns text into token ids and back."""

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...


class TokenizerHandle(Encoder, Protocol):
    """A stored tokenizer: an encoder plus the ids models need to know about."""

    @property
    def tokenizer_id(self) -> str: ...

    @property
    def kind(self) -> TokenizerKind: ...

    @property
    def vocab_size(self) -> int: ...

    @property
    def pad_id(self) -> int: ...

    @property
    def eos_id(self) -> int: ...

    @property
    def unk_id(self) -> int: ...

    def id_to_token(self, token_id: int) -> str:
        """What a token stands for, for display: a special's name, else its text (U+FFFD for
        a byte-level piece of a character)."""
        ...

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """The ids of `text` and, per id, the [start, end) span of characters it encodes.

        A character split over several byte-level tokens gives each of them its span.
        """
        ...

    def coverage(self, text: str) -> float:
        """Share of the text's characters encoded without falling back to unk."""
        ...

    def save(self, directory: Path) -> None:
        """Write Hugging Face files (`AutoTokenizer.from_pretrained(directory)` gives the same
        ids as `encode`) plus `tokenizer_meta.json`, which `load_tokenizer_dir` reads back."""
        ...


class TokenizerInfo(TypedDict):
    """What a stored tokenizer reports about itself (the tokenizer job's result)."""

    tokenizer_id: str
    kind: TokenizerKind
    vocab_size: int
    coverage: float


class TokenizerMeta(TypedDict):
    """`tokenizer_meta.json`: which of our classes reads the directory back, and its size."""

    tokenizer_id: str
    kind: TokenizerKind
    vocab_size: int


class TokenizerTrainConfig(TypedDict):
    """What a tokenizer job asks for; validated once by validate_tokenizer_train_config.

    `vocab_size` caps the vocabulary, specials included: the BPE target size, or for `char`
    how many of the most frequent characters are kept (the others encode to unk).
    """

    kind: TokenizerKind
    corpus_path: str
    tokenizer_id: str
    vocab_size: int
