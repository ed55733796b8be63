"""What the training loop, backends and jobs need from a tokenizer."""

from __future__ import annotations

from typing import Literal, Protocol, TypedDict

TokenizerKind = Literal["char", "bpe"]


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

    def id_to_token(self, token_id: int) -> str: ...

    def to_json(self) -> str: ...


class TokenizerInfo(TypedDict):
    """What a stored tokenizer reports about itself."""

    tokenizer_id: str
    kind: TokenizerKind
    vocab_size: int
    coverage: float
