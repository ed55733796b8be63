"""The tokenizer store: ids name directories, saves are atomic, loads check what they read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import SAMPLE_TEXT

from model_trainer.contracts.tokenizer import META_FILE
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.tokenizers.bpe import BPETokenizer
from model_trainer.tokenizers.char import CharTokenizer
from model_trainer.tokenizers.hf_format import HF_TOKENIZER_FILE
from model_trainer.tokenizers.store import (
    load_tokenizer,
    load_tokenizer_dir,
    read_meta,
    require_tokenizer,
    save_tokenizer,
    tokenizer_dir,
    tokenizer_exists,
)

BPE = BPETokenizer.train(SAMPLE_TEXT, "bpe-1", vocab_size=280)
CHAR = CharTokenizer.build(SAMPLE_TEXT, "char-1")


def _load_error(directory: Path) -> ModelTrainerError:
    with pytest.raises(ModelTrainerError) as info:
        load_tokenizer_dir(directory)
    return info.value


def test_save_then_load_by_id_for_both_kinds(settings: Settings) -> None:
    for tokenizer in (BPE, CHAR):
        assert not tokenizer_exists(tokenizer.tokenizer_id, settings)
        path = save_tokenizer(tokenizer, settings)
        assert path == settings["artifacts_root"] / "tokenizers" / tokenizer.tokenizer_id
        assert tokenizer_exists(tokenizer.tokenizer_id, settings)
        require_tokenizer(tokenizer.tokenizer_id, settings)
        loaded = load_tokenizer(tokenizer.tokenizer_id, settings)
        assert (loaded.tokenizer_id, loaded.kind, loaded.vocab_size) == (
            tokenizer.tokenizer_id,
            tokenizer.kind,
            tokenizer.vocab_size,
        )
        assert loaded.encode(SAMPLE_TEXT) == tokenizer.encode(SAMPLE_TEXT)
        assert read_meta(path) == {
            "tokenizer_id": tokenizer.tokenizer_id,
            "kind": tokenizer.kind,
            "vocab_size": tokenizer.vocab_size,
        }
    # nothing half-written is left beside them
    assert sorted(p.name for p in (settings["artifacts_root"] / "tokenizers").iterdir()) == [
        "bpe-1",
        "char-1",
    ]


def test_an_id_already_stored_keeps_its_first_tokenizer(settings: Settings) -> None:
    save_tokenizer(CHAR, settings)
    again = CharTokenizer.build("abc", "char-1")
    save_tokenizer(again, settings)
    assert load_tokenizer("char-1", settings).vocab_size == CHAR.vocab_size
    assert len(list((settings["artifacts_root"] / "tokenizers").iterdir())) == 1


def test_a_damaged_directory_under_the_id_is_not_papered_over(settings: Settings) -> None:
    occupied = tokenizer_dir(settings, "char-1")
    occupied.mkdir(parents=True)
    (occupied / "stray.txt").write_text("left by hand")
    with pytest.raises(OSError, match="not empty"):
        save_tokenizer(CHAR, settings)
    assert not tokenizer_exists("char-1", settings)
    assert [p.name for p in occupied.parent.iterdir()] == ["char-1"]


def test_an_unknown_id_is_tokenizer_not_found(settings: Settings) -> None:
    for check in (require_tokenizer, load_tokenizer):
        with pytest.raises(ModelTrainerError) as info:
            check("nope", settings)
        assert (info.value.code, info.value.http_status) == ("TOKENIZER_NOT_FOUND", 404)
        assert info.value.details == {"field": "tokenizer_id", "tokenizer_id": "nope"}


@pytest.mark.parametrize("tokenizer_id", ["../escape", "", "a/b", ".hidden", "x" * 200])
def test_ids_outside_the_safe_alphabet_are_refused(settings: Settings, tokenizer_id: str) -> None:
    with pytest.raises(ModelTrainerError) as info:
        tokenizer_exists(tokenizer_id, settings)
    assert (info.value.code, info.value.details) == ("INVALID_CONFIG", {"field": "tokenizer_id"})


def test_a_directory_without_meta_holds_no_tokenizer(tmp_path: Path) -> None:
    error = _load_error(tmp_path)
    assert error.code == "TOKENIZER_NOT_FOUND"


@pytest.mark.parametrize(
    ("meta", "field"),
    [
        (b"{not json", "$"),
        (b'{"kind": "char", "vocab_size": 3}', "tokenizer_id"),
        (b'{"tokenizer_id": "t", "kind": "wordpiece", "vocab_size": 3}', "kind"),
        (b'{"tokenizer_id": "t", "kind": "char", "vocab_size": "3"}', "vocab_size"),
    ],
)
def test_a_damaged_meta_file_fails_to_load(tmp_path: Path, meta: bytes, field: str) -> None:
    CHAR.save(tmp_path)
    (tmp_path / META_FILE).write_bytes(meta)
    error = _load_error(tmp_path)
    assert (error.code, error.http_status) == ("TOKENIZER_LOAD_FAILED", 500)
    assert error.details["field"] == field


def test_a_meta_file_that_disagrees_with_the_vocabulary_fails_to_load(tmp_path: Path) -> None:
    BPE.save(tmp_path)
    meta = json.loads((tmp_path / META_FILE).read_text())
    (tmp_path / META_FILE).write_text(json.dumps({**meta, "vocab_size": 999}))
    error = _load_error(tmp_path)
    assert error.code == "TOKENIZER_LOAD_FAILED"
    assert "999" in error.message


def test_a_damaged_tokenizer_json_fails_to_load(tmp_path: Path) -> None:
    BPE.save(tmp_path)
    (tmp_path / HF_TOKENIZER_FILE).write_text("{}")
    assert _load_error(tmp_path).code == "TOKENIZER_LOAD_FAILED"


def test_specials_must_keep_their_ids(tmp_path: Path) -> None:
    BPE.save(tmp_path)
    raw = json.loads((tmp_path / HF_TOKENIZER_FILE).read_text())
    vocab = raw["model"]["vocab"]
    vocab["<pad>"], vocab["!"] = vocab["!"], vocab["<pad>"]
    raw["added_tokens"][0]["id"] = vocab["<pad>"]
    (tmp_path / HF_TOKENIZER_FILE).write_text(json.dumps(raw))
    error = _load_error(tmp_path)
    assert error.code == "TOKENIZER_LOAD_FAILED"
    assert "0, 1, 2" in error.message


def test_a_tokenizer_saved_to_s3_is_found_and_loaded_by_an_empty_root(
    s3_settings: Settings, tmp_path: Path
) -> None:
    save_tokenizer(BPE, s3_settings)
    reader: Settings = {**s3_settings, "artifacts_root": tmp_path / "reader"}
    assert tokenizer_exists("bpe-1", reader)
    assert not tokenizer_exists("bpe-2", reader)
    loaded = load_tokenizer("bpe-1", reader)
    assert loaded.encode("To be, or not") == BPE.encode("To be, or not")
    assert (tokenizer_dir(reader, "bpe-1") / META_FILE).is_file()
