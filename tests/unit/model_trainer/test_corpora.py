"""Corpora are read only from inside the roots, with size and emptiness checked first."""

import hashlib
import sysconfig
from pathlib import Path

import boto3
import pytest

from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.artifacts import publish
from model_trainer.storage.corpora import (
    build_default_corpus,
    cached_corpus,
    confine,
    corpus_roots,
    read_corpus,
)


def _stdlib_sources() -> list[Path]:
    return sorted(Path(sysconfig.get_path("stdlib")).glob("*.py"))


def test_corpus_roots_are_data_root_and_uploaded_corpora(settings: Settings) -> None:
    assert corpus_roots(settings) == [
        settings["data_root"],
        settings["artifacts_root"] / "corpora",
    ]


def test_confine_accepts_a_path_under_a_root(settings: Settings) -> None:
    inside = settings["data_root"] / "sub" / "c.txt"
    assert confine(str(inside), corpus_roots(settings)) == inside.resolve()
    uploaded = settings["artifacts_root"] / "corpora" / "abc.txt"
    assert confine(str(uploaded), corpus_roots(settings)) == uploaded.resolve()


def test_confine_normalises_dot_dot_that_stays_inside(settings: Settings) -> None:
    path = settings["data_root"] / "sub" / ".." / "c.txt"
    assert confine(str(path), [settings["data_root"]]) == settings["data_root"] / "c.txt"


@pytest.mark.parametrize("relative", ["../outside.txt", "../data2/c.txt", "sub/../../x"])
def test_confine_rejects_escapes(settings: Settings, relative: str) -> None:
    path = str(settings["data_root"] / relative)
    with pytest.raises(ModelTrainerError) as info:
        confine(path, corpus_roots(settings))
    assert info.value.code == "PATH_OUTSIDE_ROOT"
    assert info.value.http_status == 400
    assert info.value.details == {"path": path}
    assert str(settings["data_root"]) in info.value.message


def test_confine_rejects_an_absolute_path_elsewhere(settings: Settings) -> None:
    with pytest.raises(ModelTrainerError) as info:
        confine("/etc/passwd", corpus_roots(settings))
    assert info.value.code == "PATH_OUTSIDE_ROOT"


def test_confine_rejects_a_symlink_inside_the_root_pointing_outside(
    settings: Settings, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not for training", encoding="utf-8")
    link = settings["data_root"] / "innocent.txt"
    link.symlink_to(secret)
    with pytest.raises(ModelTrainerError) as info:
        confine(str(link), corpus_roots(settings))
    assert info.value.code == "PATH_OUTSIDE_ROOT"
    with pytest.raises(ModelTrainerError) as read_info:
        read_corpus(str(link), settings)
    assert read_info.value.code == "PATH_OUTSIDE_ROOT"


def test_confine_rejects_a_symlinked_directory_pointing_outside(
    settings: Settings, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (settings["data_root"] / "linked").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ModelTrainerError) as info:
        confine(str(settings["data_root"] / "linked" / "c.txt"), corpus_roots(settings))
    assert info.value.code == "PATH_OUTSIDE_ROOT"


def test_confine_accepts_a_symlink_that_stays_inside(settings: Settings) -> None:
    target = settings["data_root"] / "real.txt"
    target.write_text("x", encoding="utf-8")
    link = settings["data_root"] / "alias.txt"
    link.symlink_to(target)
    assert confine(str(link), corpus_roots(settings)) == target


def test_confine_resolves_a_root_that_is_itself_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    root = tmp_path / "root-link"
    root.symlink_to(real, target_is_directory=True)
    assert confine(str(root / "c.txt"), [root]) == real / "c.txt"


def test_read_corpus_returns_text_hash_and_size(settings: Settings, corpus_path: Path) -> None:
    raw = corpus_path.read_bytes()
    corpus = read_corpus(str(corpus_path), settings)
    assert corpus["text"] == raw.decode("utf-8")
    assert corpus["sha256"] == hashlib.sha256(raw).hexdigest()
    assert corpus["bytes"] == len(raw)
    assert "—" in corpus["text"]


def test_read_corpus_reads_uploaded_corpora(settings: Settings) -> None:
    uploaded = settings["artifacts_root"] / "corpora" / "c1.txt"
    uploaded.parent.mkdir()
    uploaded.write_bytes(b"abc\n")
    corpus = read_corpus(str(uploaded), settings)
    assert corpus == {
        "text": "abc\n",
        "sha256": hashlib.sha256(b"abc\n").hexdigest(),
        "bytes": 4,
    }


def test_read_corpus_replaces_invalid_utf8(settings: Settings) -> None:
    path = settings["data_root"] / "latin1.txt"
    path.write_bytes(b"caf\xe9 ok")
    corpus = read_corpus(str(path), settings)
    assert corpus["text"] == "caf\ufffd ok"
    assert corpus["sha256"] == hashlib.sha256(b"caf\xe9 ok").hexdigest()


@pytest.mark.parametrize("name", ["missing.txt", "a_directory"])
def test_read_corpus_not_found(settings: Settings, name: str) -> None:
    (settings["data_root"] / "a_directory").mkdir()
    path = str(settings["data_root"] / name)
    with pytest.raises(ModelTrainerError) as info:
        read_corpus(path, settings)
    assert info.value.code == "CORPUS_NOT_FOUND"
    assert info.value.http_status == 404
    assert info.value.details == {"path": path}


def test_read_corpus_too_large(settings: Settings) -> None:
    limited: Settings = {**settings, "max_corpus_bytes": 10}
    path = settings["data_root"] / "big.txt"
    path.write_bytes(b"x" * 11)
    with pytest.raises(ModelTrainerError) as info:
        read_corpus(str(path), limited)
    assert info.value.code == "CORPUS_TOO_LARGE"
    assert info.value.http_status == 413
    assert info.value.details == {"path": str(path), "bytes": 11}
    assert "limit is 10" in info.value.message


def test_read_corpus_at_exactly_the_limit_is_accepted(settings: Settings) -> None:
    limited: Settings = {**settings, "max_corpus_bytes": 10}
    path = settings["data_root"] / "edge.txt"
    path.write_bytes(b"x" * 10)
    assert read_corpus(str(path), limited)["bytes"] == 10


@pytest.mark.parametrize("content", [b"", b" ", b" \n\t\r\n  "])
def test_read_corpus_empty_or_whitespace(settings: Settings, content: bytes) -> None:
    path = settings["data_root"] / "empty.txt"
    path.write_bytes(content)
    with pytest.raises(ModelTrainerError) as info:
        read_corpus(str(path), settings)
    assert info.value.code == "CORPUS_EMPTY"
    assert info.value.http_status == 400
    assert info.value.details == {"path": str(path)}


def test_build_default_corpus_writes_a_prefix_of_the_stdlib(tmp_path: Path) -> None:
    dest = tmp_path / "nested" / "dir" / "stdlib.txt"
    assert build_default_corpus(dest, max_bytes=50_000) == dest
    written = dest.read_bytes()
    assert len(written) == 50_000
    sources = b"".join(path.read_bytes() for path in _stdlib_sources())
    assert written == sources[:50_000]
    assert b"import " in written
    assert b"def " in written


def test_build_default_corpus_default_limit_is_one_megabyte(tmp_path: Path) -> None:
    dest = build_default_corpus(tmp_path / "stdlib.txt")
    assert dest.stat().st_size == 1_000_000


def test_build_default_corpus_is_idempotent(tmp_path: Path) -> None:
    dest = tmp_path / "stdlib.txt"
    build_default_corpus(dest, max_bytes=1_000)
    first = dest.read_bytes()
    assert build_default_corpus(dest, max_bytes=5_000) == dest
    assert dest.read_bytes() == first
    assert len(first) == 1_000


def test_build_default_corpus_keeps_an_existing_corpus(tmp_path: Path) -> None:
    dest = tmp_path / "stdlib.txt"
    dest.write_bytes(b"already here")
    build_default_corpus(dest, max_bytes=1_000)
    assert dest.read_bytes() == b"already here"


def test_build_default_corpus_rebuilds_an_empty_file(tmp_path: Path) -> None:
    dest = tmp_path / "stdlib.txt"
    dest.write_bytes(b"")
    build_default_corpus(dest, max_bytes=2_000)
    assert dest.stat().st_size == 2_000


def test_build_default_corpus_stops_when_the_stdlib_runs_out(tmp_path: Path) -> None:
    dest = build_default_corpus(tmp_path / "all.txt", max_bytes=10**12)
    sources = _stdlib_sources()
    assert dest.stat().st_size == sum(path.stat().st_size for path in sources)
    assert dest.read_bytes().endswith(sources[-1].read_bytes())


def test_an_uploaded_corpus_is_fetched_from_s3_and_checked_against_its_name(
    s3_settings: Settings, s3_endpoint: str, tmp_path: Path
) -> None:
    text = b"uploaded once, read anywhere\n" * 10
    sha = hashlib.sha256(text).hexdigest()
    corpora = s3_settings["artifacts_root"] / "corpora"
    corpora.mkdir()
    (corpora / f"{sha}.txt").write_bytes(text)
    publish(s3_settings, [corpora / f"{sha}.txt"])
    reader: Settings = {**s3_settings, "artifacts_root": tmp_path / "reader"}
    path = reader["artifacts_root"] / "corpora" / f"{sha}.txt"
    assert cached_corpus(reader, path) == path
    assert read_corpus(str(path), reader)["sha256"] == sha
    assert cached_corpus(reader, path) == path  # cached: not asked for again
    location = s3_settings["artifacts_s3"]
    assert location is not None
    boto3.client("s3", endpoint_url=s3_endpoint).put_object(
        Bucket=location["bucket"], Key=f"store/corpora/{sha}.txt", Body=b"other text"
    )
    path.unlink()
    with pytest.raises(ModelTrainerError) as refused:
        cached_corpus(reader, path)
    assert refused.value.code == "ARTIFACT_CORRUPT"
    assert not path.exists()
    elsewhere = reader["data_root"] / "c.txt"
    assert cached_corpus(reader, elsewhere) == elsewhere
