"""Text given inline or as a path under DATA_ROOT, for score and generate requests."""

from __future__ import annotations

from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.corpora import confine


def resolve_text(text: str | None, path: str | None, settings: Settings) -> str:
    """The inline text, or the file's; validators guarantee exactly one is given."""
    if text is not None:
        return text
    resolved = confine(str(path), [settings["data_root"]])
    if not resolved.is_file():
        raise ModelTrainerError(
            "CORPUS_NOT_FOUND", f"text file {path} does not exist", details={"path": str(path)}
        )
    return resolved.read_text(encoding="utf-8", errors="replace")
