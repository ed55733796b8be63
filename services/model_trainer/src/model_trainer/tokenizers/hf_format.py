"""The files a stored tokenizer is made of, shared by both kinds.

A tokenizer directory is what Hugging Face's `AutoTokenizer.from_pretrained` reads
(`tokenizer.json`, `tokenizer_config.json`, `special_tokens_map.json`), plus our own
`tokenizer_meta.json` naming the class that reads it back.
"""

from __future__ import annotations

import json
from pathlib import Path

import orjson
from tokenizers import Tokenizer

from model_trainer.contracts.tokenizer import META_FILE, TokenizerMeta
from model_trainer.errors import ModelTrainerError

SPECIALS = ("<pad>", "<eos>", "<unk>")
PAD_ID, EOS_ID, UNK_ID = 0, 1, 2
PAD, EOS, UNK = SPECIALS

HF_TOKENIZER_FILE = "tokenizer.json"
HF_CONFIG_FILE = "tokenizer_config.json"
HF_SPECIALS_FILE = "special_tokens_map.json"

# Hugging Face's own "no known limit" (transformers' VERY_LARGE_INTEGER); it overflows orjson's
# 64-bit integers, hence the standard library's json for the two Hugging Face config files.
NO_MAX_LENGTH = int(1e30)

# The eos token also stands for "start of text" (GPT-2's convention): models condition the
# first token on it.
SPECIAL_TOKENS_MAP = {"bos_token": EOS, "eos_token": EOS, "pad_token": PAD, "unk_token": UNK}


def write_tokenizer_files(directory: Path, hf: Tokenizer, meta: TokenizerMeta) -> None:
    """Write the four files; `split_special_tokens` makes transformers encode a literal
    "<eos>" in text as text, exactly as our own encode does."""
    directory.mkdir(parents=True, exist_ok=True)
    hf.save(str(directory / HF_TOKENIZER_FILE))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        **SPECIAL_TOKENS_MAP,
        "model_max_length": NO_MAX_LENGTH,
        "split_special_tokens": True,
        "clean_up_tokenization_spaces": False,
    }
    (directory / HF_CONFIG_FILE).write_text(json.dumps(config, indent=2), encoding="utf-8")
    specials = json.dumps(SPECIAL_TOKENS_MAP, indent=2)
    (directory / HF_SPECIALS_FILE).write_text(specials, encoding="utf-8")
    (directory / META_FILE).write_bytes(orjson.dumps(meta, option=orjson.OPT_INDENT_2))


def load_failed(directory: Path, reason: str) -> ModelTrainerError:
    return ModelTrainerError(
        "TOKENIZER_LOAD_FAILED",
        f"tokenizer in {directory} cannot be loaded: {reason}",
        details={"path": str(directory)},
    )


def read_hf_tokenizer(directory: Path) -> Tokenizer:
    """`tokenizer.json` with specials checked at their ids; literal specials in text stay text
    (a runtime setting that tokenizer.json does not carry)."""
    try:
        hf = Tokenizer.from_file(str(directory / HF_TOKENIZER_FILE))
    except Exception as exc:
        raise load_failed(directory, f"{HF_TOKENIZER_FILE}: {exc}") from exc
    check_specials(hf, directory)
    hf.encode_special_tokens = True
    return hf


def check_specials(hf: Tokenizer, directory: Path) -> None:
    found = [hf.token_to_id(token) for token in SPECIALS]
    if found != [PAD_ID, EOS_ID, UNK_ID]:
        raise load_failed(directory, f"specials {SPECIALS} must have ids 0, 1, 2, got {found}")
