"""What Hugging Face transformers makes of a tokenizer directory we wrote."""

from __future__ import annotations

from pathlib import Path

from transformers import AutoTokenizer, PreTrainedTokenizerFast


def auto_tokenizer(directory: Path) -> PreTrainedTokenizerFast:
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    assert isinstance(tokenizer, PreTrainedTokenizerFast)
    return tokenizer


def hf_token_ids(tokenizer: PreTrainedTokenizerFast, text: str) -> list[int]:
    """`tokenizer(text)["input_ids"]`, checked to be a list of ints."""
    encoded: object = tokenizer(text)["input_ids"]
    assert isinstance(encoded, list)
    ids = [token_id for token_id in encoded if isinstance(token_id, int)]
    assert len(ids) == len(encoded)
    return ids


def hf_decode(
    tokenizer: PreTrainedTokenizerFast, ids: list[int], *, skip_special_tokens: bool = True
) -> str:
    decoded: object = tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)
    assert isinstance(decoded, str)
    return decoded
