"""Fixtures shared by every test: isolated settings roots and a small real corpus."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model_trainer.settings import Settings

SAMPLE_TEXT = (
    "To be, or not to be, that is the question:\n"
    "Whether 'tis nobler in the mind to suffer\n"
    "The slings and arrows of outrageous fortune,\n"
    "Or to take arms against a sea of troubles\n"
    "And by opposing end them. To die—to sleep,\n"
) * 40


@pytest.fixture(autouse=True)
def _deterministic_torch() -> None:
    """Two threads everywhere (the CI machine's cores) and a fixed global seed per test."""
    torch.set_num_threads(2)
    torch.manual_seed(0)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    data_root = tmp_path / "data"
    artifacts_root = tmp_path / "artifacts"
    data_root.mkdir()
    artifacts_root.mkdir()
    return {
        "redis_url": "redis://127.0.0.1:6379/0",
        "artifacts_root": artifacts_root,
        "data_root": data_root,
        "max_corpus_bytes": 1_000_000,
        "default_user_id": 1,
    }


@pytest.fixture
def corpus_path(settings: Settings) -> Path:
    """A ~9 kB corpus under DATA_ROOT (non-ASCII included)."""
    path = settings["data_root"] / "corpus.txt"
    path.write_text(SAMPLE_TEXT, encoding="utf-8")
    return path
