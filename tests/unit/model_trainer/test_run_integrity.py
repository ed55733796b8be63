"""A run's files against its manifest's digests, for each family: recorded at training,
checked at every load (a damaged run is refused, never loaded), resumed past a corrupt
checkpoint, and written with ordinary modes."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from tests.support.artifacts import flip_last_byte, modes, truncate_half, usual_umask
from tests.support.backends import char_tokenizer, train_cfg, train_run

from model_trainer.backends.causal_lm import as_module
from model_trainer.backends.registry import get_backend
from model_trainer.contracts.model import MODEL_FAMILIES, ModelFamily, PreparedLMModel
from model_trainer.contracts.train_config import ModelTrainConfig
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.checkpoints import checkpoint_dirs

families = pytest.mark.parametrize("family", MODEL_FAMILIES)


def _load_error(family: ModelFamily, run_dir: Path, settings: Settings) -> ModelTrainerError:
    with pytest.raises(ModelTrainerError) as caught:
        get_backend(family).load(str(run_dir), settings)
    return caught.value


def _manifest(run_dir: Path) -> dict[str, object]:
    manifest: dict[str, object] = json.loads((run_dir / "manifest.json").read_text())
    return manifest


def _same_weights(a: PreparedLMModel, b: PreparedLMModel) -> bool:
    left, right = as_module(a["model"]).state_dict(), as_module(b["model"]).state_dict()
    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)


@families
def test_the_manifest_records_every_file_of_the_run(
    family: ModelFamily, settings: Settings, corpus_path: Path
) -> None:
    _, _, run_dir = train_run(get_backend(family), settings, train_cfg(family, corpus_path), "r")
    files = sorted(p.name for p in run_dir.iterdir() if p.is_file() and p.name != "manifest.json")
    assert "model.safetensors" in files and "tokenizer.json" in files
    assert _manifest(run_dir)["artifacts"] == {
        name: {
            "sha256": hashlib.sha256((run_dir / name).read_bytes()).hexdigest(),
            "bytes": (run_dir / name).stat().st_size,
        }
        for name in files
    }
    assert not (run_dir / ".manifest.json.partial").exists()


@families
@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (flip_last_byte, "does not match the sha256 recorded for it"),
        (truncate_half, "were recorded"),
    ],
)
def test_damaged_weights_are_refused_at_load(
    family: ModelFamily,
    settings: Settings,
    corpus_path: Path,
    damage: Callable[[Path], None],
    reason: str,
) -> None:
    backend = get_backend(family)
    _, _, run_dir = train_run(backend, settings, train_cfg(family, corpus_path), "r")
    damage(run_dir / "model.safetensors")
    error = _load_error(family, run_dir, settings)
    assert (error.code, error.http_status, error.kind) == ("ARTIFACT_CORRUPT", 500, "system")
    assert error.message.startswith(f"model.safetensors in {run_dir} ")
    assert reason in error.message
    assert error.details == {"path": str(run_dir / "model.safetensors")}


@families
def test_a_flipped_bit_would_load_unnoticed_without_the_check(
    family: ModelFamily, settings: Settings, corpus_path: Path
) -> None:
    """What the digest catches: the same damage in a copy without a manifest loads quietly."""
    backend = get_backend(family)
    _, _, run_dir = train_run(backend, settings, train_cfg(family, corpus_path), "r")
    copy = settings["artifacts_root"] / "copy"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("manifest.json", "checkpoints"))
    flip_last_byte(copy / "model.safetensors")
    assert not _same_weights(
        backend.load(str(copy), settings), backend.load(str(run_dir), settings)
    )


@families
def test_a_changed_tokenizer_or_config_is_refused(
    family: ModelFamily, settings: Settings, corpus_path: Path
) -> None:
    _, _, run_dir = train_run(get_backend(family), settings, train_cfg(family, corpus_path), "r")
    for name in ("tokenizer.json", "config.json"):
        original = (run_dir / name).read_bytes()
        (run_dir / name).write_bytes(original.replace(b"{", b"{ ", 1)[:-1])
        error = _load_error(family, run_dir, settings)
        assert (error.code, error.details) == ("ARTIFACT_CORRUPT", {"path": str(run_dir / name)})
        (run_dir / name).write_bytes(original)
    get_backend(family).load(str(run_dir), settings)


@families
def test_a_manifest_from_before_digests_loads_with_a_warning(
    family: ModelFamily, settings: Settings, corpus_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, _, run_dir = train_run(get_backend(family), settings, train_cfg(family, corpus_path), "old")
    manifest = _manifest(run_dir)
    del manifest["artifacts"]
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    with caplog.at_level(logging.WARNING, logger="model_trainer.storage.runs"):
        loaded = get_backend(family).load(str(run_dir), settings)
    assert loaded["model_family"] == family
    assert "run old predates artifact digests: loaded unverified" in caplog.text


@families
@pytest.mark.parametrize(
    ("manifest", "reason"),
    [
        ("{not json", "is unreadable"),
        ('{"artifacts": ["model.safetensors"]}', "is unreadable"),
        ('{"artifacts": {"model.safetensors": {"sha256": "00"}}}', "holds an unreadable digest"),
    ],
)
def test_an_unreadable_manifest_refuses_the_run(
    family: ModelFamily, settings: Settings, corpus_path: Path, manifest: str, reason: str
) -> None:
    _, _, run_dir = train_run(get_backend(family), settings, train_cfg(family, corpus_path), "r")
    (run_dir / "manifest.json").write_text(manifest)
    error = _load_error(family, run_dir, settings)
    assert error.code == "ARTIFACT_CORRUPT"
    assert error.message.startswith(f"manifest.json in {run_dir} {reason}")


def test_fine_tuning_from_a_damaged_run_is_refused(settings: Settings, corpus_path: Path) -> None:
    backend = get_backend("gpt2")
    _, _, run_dir = train_run(backend, settings, train_cfg("gpt2", corpus_path), "base")
    flip_last_byte(run_dir / "model.safetensors")
    with pytest.raises(ModelTrainerError) as caught:
        backend.prepare(
            train_cfg("gpt2", corpus_path, init_from=str(run_dir)),
            settings,
            tokenizer=char_tokenizer(),
        )
    assert caught.value.code == "ARTIFACT_CORRUPT"


def _interrupt_at(
    step: int, family: ModelFamily, settings: Settings, cfg: ModelTrainConfig, run_id: str
) -> Path:
    """Train until `step` is done, as a worker killed there would have: checkpoints on disk
    (every 10 steps, the newest two kept, plus the one the stop writes)."""
    calls = iter(range(1_000))
    with pytest.raises(ModelTrainerError) as caught:
        train_run(
            get_backend(family),
            settings,
            cfg,
            run_id,
            callbacks={
                "heartbeat": lambda _: None,
                "cancelled": lambda: next(calls) >= step,
                "progress": None,
                "alert": None,
                "prune": None,
            },
        )
    assert caught.value.code == "TRAINING_CANCELLED"
    return settings["artifacts_root"] / "runs" / run_id / "checkpoints"


@families
@pytest.mark.parametrize("damage", [truncate_half, flip_last_byte])
def test_resume_falls_back_past_a_corrupt_latest_checkpoint(
    family: ModelFamily,
    settings: Settings,
    corpus_path: Path,
    caplog: pytest.LogCaptureFixture,
    damage: Callable[[Path], None],
) -> None:
    backend = get_backend(family)
    cfg = train_cfg(family, corpus_path)
    _, straight, straight_dir = train_run(backend, settings, cfg, "straight")
    checkpoints = _interrupt_at(25, family, settings, cfg, "retried")
    assert [p.name for p in checkpoint_dirs(checkpoints)] == ["step_000000020", "step_000000025"]
    damage(checkpoints / "step_000000025" / "model.safetensors")
    with caplog.at_level(logging.WARNING, logger="model_trainer.training.checkpoint"):
        _, resumed, run_dir = train_run(backend, settings, cfg, "retried")
    assert "not resuming from step_000000025: model.safetensors in " in caplog.text
    assert resumed["resumed_from_step"] == 20
    assert (resumed["steps"], resumed["val_loss"]) == (straight["steps"], straight["val_loss"])
    assert _same_weights(
        backend.load(str(straight_dir), settings), backend.load(str(run_dir), settings)
    )


@families
def test_with_no_good_checkpoint_training_starts_afresh(
    family: ModelFamily, settings: Settings, corpus_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend = get_backend(family)
    cfg = train_cfg(family, corpus_path)
    _, straight, straight_dir = train_run(backend, settings, cfg, "straight")
    checkpoints = _interrupt_at(25, family, settings, cfg, "retried")
    truncate_half(checkpoints / "step_000000025" / "training.safetensors")
    (checkpoints / "step_000000020" / "digests.json").unlink()  # as a pre-digest checkpoint
    with caplog.at_level(logging.WARNING, logger="model_trainer.training.checkpoint"):
        _, resumed, run_dir = train_run(backend, settings, cfg, "retried")
    assert "not resuming from step_000000025" in caplog.text
    assert "not resuming from step_000000020: checkpoint " in caplog.text
    assert resumed["resumed_from_step"] is None
    assert resumed["val_loss"] == straight["val_loss"]
    assert _same_weights(
        backend.load(str(straight_dir), settings), backend.load(str(run_dir), settings)
    )


@families
def test_a_finished_run_directory_has_ordinary_modes(
    family: ModelFamily, settings: Settings, corpus_path: Path
) -> None:
    """0644 files and 0755 folders under umask 022 (safetensors alone would write 0600)."""
    with usual_umask():
        _, _, run_dir = train_run(
            get_backend(family), settings, train_cfg(family, corpus_path), "r"
        )
    found = modes(run_dir)
    assert "model.safetensors" in found and "checkpoints/step_000000020/model.safetensors" in found
    assert found == {name: 0o755 if (run_dir / name).is_dir() else 0o644 for name in found}
