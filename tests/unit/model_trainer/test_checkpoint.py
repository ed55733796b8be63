from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pytest
import torch
from tests.support.artifacts import modes, usual_umask
from torch import nn

from model_trainer.contracts.train_config import TRAIN_DEFAULTS, make_train_config
from model_trainer.errors import ModelTrainerError
from model_trainer.storage.checkpoints import CheckpointMetrics, checkpoint_dirs
from model_trainer.storage.digests import digest_files
from model_trainer.training.checkpoint import (
    CheckpointState,
    latest_checkpoint,
    load_checkpoint,
    resume_latest,
    save_checkpoint,
)
from model_trainer.training.optim import make_optimizer, make_scheduler
from platform_core.json_types import PayloadError

CPU = torch.device("cpu")


def _parts(seed: int) -> tuple[nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    optimizer = make_optimizer(
        model,
        make_train_config(
            model_family="char_lstm",
            model_size="tiny",
            corpus_path="-",
            options={**TRAIN_DEFAULTS, "learning_rate": 0.1, "weight_decay": 0.01},
        ),
        CPU,
    )
    scheduler = make_scheduler(optimizer, kind="cosine", warmup=1, total=10, min_ratio=0.1)
    return model, optimizer, scheduler


def _train_steps(
    model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LambdaLR
) -> None:
    inputs = torch.randn(3, 5, 3, generator=torch.Generator().manual_seed(11))
    for batch in inputs:
        loss = model(batch).pow(2).mean()
        torch.autograd.backward(loss)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()


def _metrics(val_loss: float | None = None) -> CheckpointMetrics:
    return {"step": 0, "epoch": 0, "train_loss": None, "val_loss": val_loss, "created_at": "t"}


def _state(step: int) -> CheckpointState:
    return {"step": step, "epoch": 1, "batch_index": 4, "tokens_seen": 99, "elapsed_s": 1.5}


def test_round_trip_restores_model_optimizer_scheduler_and_rng(tmp_path: Path) -> None:
    model, optimizer, scheduler = _parts(0)
    _train_steps(model, optimizer, scheduler)
    path = save_checkpoint(
        tmp_path,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        state=_state(3),
        metrics=_metrics(),
        keep_last=2,
        keep_best=1,
    )
    after_save = torch.rand(3)  # what the RNG gives next, after the checkpoint

    other, other_opt, other_sched = _parts(1)
    torch.manual_seed(42)
    state = load_checkpoint(path, model=other, optimizer=other_opt, scheduler=other_sched)
    assert state == _state(3)
    assert torch.equal(torch.rand(3), after_save)
    for a, b in zip(model.state_dict().values(), other.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert other_sched.state_dict() == scheduler.state_dict()
    saved_opt = optimizer.state_dict()
    loaded_opt = other_opt.state_dict()
    assert loaded_opt["param_groups"] == [
        {**group, "betas": list(group["betas"])} for group in saved_opt["param_groups"]
    ]
    for pid, entries in saved_opt["state"].items():
        for key, value in entries.items():
            assert torch.equal(loaded_opt["state"][pid][key], value), (pid, key)
    # both continue identically
    _train_steps(model, optimizer, scheduler)
    _train_steps(other, other_opt, other_sched)
    for a, b in zip(model.parameters(), other.parameters(), strict=True):
        assert torch.equal(a, b)


def test_retention_keeps_the_newest_and_ignores_temp_dirs(tmp_path: Path) -> None:
    model, optimizer, scheduler = _parts(0)
    (tmp_path / ".step_000000009.tmp").mkdir()
    for step in (1, 2, 3):
        save_checkpoint(
            tmp_path,
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            state=_state(step),
            metrics=_metrics(),
            keep_last=2,
            keep_best=1,
        )
    assert [p.name for p in checkpoint_dirs(tmp_path)] == ["step_000000002", "step_000000003"]
    assert latest_checkpoint(tmp_path) == tmp_path / "step_000000003"


def test_saving_the_same_step_again_replaces_it(tmp_path: Path) -> None:
    model, optimizer, scheduler = _parts(0)
    for _ in range(2):
        save_checkpoint(
            tmp_path,
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            state=_state(5),
            metrics=_metrics(),
            keep_last=3,
            keep_best=1,
        )
    assert [p.name for p in checkpoint_dirs(tmp_path)] == ["step_000000005"]


def test_no_checkpoint_directory_means_no_checkpoints(tmp_path: Path) -> None:
    assert checkpoint_dirs(tmp_path / "missing") == []
    assert latest_checkpoint(tmp_path) is None


def test_a_state_file_changed_after_saving_is_refused_unread(tmp_path: Path) -> None:
    model, optimizer, scheduler = _parts(0)
    path = save_checkpoint(
        tmp_path,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        state=_state(1),
        metrics=_metrics(),
        keep_last=1,
        keep_best=1,
    )
    meta = orjson.loads((path / "state.json").read_bytes())
    meta["state"]["step"] = "one"
    (path / "state.json").write_bytes(orjson.dumps(meta))
    with pytest.raises(ModelTrainerError) as caught:
        load_checkpoint(path, model=model, optimizer=optimizer, scheduler=scheduler)
    assert caught.value.code == "ARTIFACT_CORRUPT"
    assert caught.value.details == {"path": str(path / "state.json")}
    # the same state with digests to match is read, and the bad field named
    digests = digest_files(path, ["model.safetensors", "training.safetensors", "state.json"])
    (path / "digests.json").write_bytes(orjson.dumps(digests))
    with pytest.raises(PayloadError) as unreadable:
        load_checkpoint(path, model=model, optimizer=optimizer, scheduler=scheduler)
    assert unreadable.value.field == "step"


def test_an_optimizer_state_that_is_not_json_is_refused(tmp_path: Path) -> None:
    model, optimizer, scheduler = _parts(0)
    optimizer.param_groups[0]["custom"] = object()
    with pytest.raises(ModelTrainerError) as caught:
        save_checkpoint(
            tmp_path,
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            state=_state(1),
            metrics=_metrics(),
            keep_last=1,
            keep_best=1,
        )
    assert caught.value.code == "MODEL_INCOMPATIBLE"


def test_non_tensor_per_parameter_state_is_refused(tmp_path: Path) -> None:
    """Some optimizers keep Python values per parameter; only tensor state is checkpointed."""
    model, optimizer, scheduler = _parts(0)
    _train_steps(model, optimizer, scheduler)
    first = next(iter(model.parameters()))
    optimizer.state[first]["calls"] = 3
    with pytest.raises(ModelTrainerError) as caught:
        save_checkpoint(
            tmp_path,
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            state=_state(1),
            metrics=_metrics(),
            keep_last=1,
            keep_best=1,
        )
    assert caught.value.code == "MODEL_INCOMPATIBLE"
    assert "'calls'" in caught.value.message
    assert checkpoint_dirs(tmp_path) == []


def test_a_checkpoint_records_its_files_digests_and_is_readable_by_all(tmp_path: Path) -> None:
    model, optimizer, scheduler = _parts(0)
    with usual_umask():
        path = save_checkpoint(
            tmp_path,
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            state=_state(1),
            metrics=_metrics(),
            keep_last=1,
            keep_best=1,
        )
    files = ["model.safetensors", "state.json", "training.safetensors"]
    assert orjson.loads((path / "digests.json").read_bytes()) == {
        name: {
            "sha256": hashlib.sha256((path / name).read_bytes()).hexdigest(),
            "bytes": (path / name).stat().st_size,
        }
        for name in files
    }
    assert modes(path) == {
        ".": 0o755,
        "digests.json": 0o644,
        "metrics.json": 0o644,
        **dict.fromkeys(files, 0o644),
    }


def test_a_checkpoint_without_digests_is_not_trusted(tmp_path: Path) -> None:
    model, optimizer, scheduler = _parts(0)
    path = save_checkpoint(
        tmp_path,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        state=_state(1),
        metrics=_metrics(),
        keep_last=1,
        keep_best=1,
    )
    (path / "digests.json").unlink()
    with pytest.raises(ModelTrainerError) as caught:
        load_checkpoint(path, model=model, optimizer=optimizer, scheduler=scheduler)
    assert caught.value.code == "ARTIFACT_CORRUPT"
    assert caught.value.message.startswith(f"checkpoint {path} has no readable digests.json")


def test_resume_latest_restores_the_newest_good_checkpoint(tmp_path: Path) -> None:
    model, optimizer, scheduler = _parts(0)
    for step in (1, 2):
        save_checkpoint(
            tmp_path,
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            state=_state(step),
            metrics=_metrics(),
            keep_last=2,
            keep_best=1,
        )
    restored: list[str] = []

    def restore(path: Path) -> None:
        load_checkpoint(path, model=model, optimizer=optimizer, scheduler=scheduler)
        restored.append(path.name)

    assert resume_latest(tmp_path, restore) == tmp_path / "step_000000002"
    (tmp_path / "step_000000002" / "state.json").write_bytes(b"{}")
    assert resume_latest(tmp_path, restore) == tmp_path / "step_000000001"
    assert restored == ["step_000000002", "step_000000001"]
    assert resume_latest(tmp_path / "none", restore) is None


def test_resume_latest_passes_on_failures_other_than_corruption(tmp_path: Path) -> None:
    """A checkpoint that verifies but does not fit the model is no reason to go back further:
    the one before it would not fit either."""
    model, optimizer, scheduler = _parts(0)
    for step in (1, 2):
        save_checkpoint(
            tmp_path,
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            state=_state(step),
            metrics=_metrics(),
            keep_last=2,
            keep_best=1,
        )
    tried: list[str] = []

    def restore(path: Path) -> None:
        tried.append(path.name)
        raise ModelTrainerError("MODEL_INCOMPATIBLE", "another shape")

    with pytest.raises(ModelTrainerError) as caught:
        resume_latest(tmp_path, restore)
    assert caught.value.code == "MODEL_INCOMPATIBLE"
    assert tried == ["step_000000002"]


def test_retention_keeps_the_best_by_val_loss_besides_the_newest(tmp_path: Path) -> None:
    model, optimizer, scheduler = _parts(0)
    val_losses = {1: 3.0, 2: 1.0, 3: 2.0, 4: 1.5, 5: 2.5, 6: None}
    for step, val_loss in val_losses.items():
        save_checkpoint(
            tmp_path,
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            state=_state(step),
            metrics=_metrics(val_loss),
            keep_last=2,
            keep_best=2,
        )
        kept = [int(p.name.removeprefix("step_")) for p in checkpoint_dirs(tmp_path)]
        assert len(kept) <= 4 and kept[-1] == step  # bounded, and the latest always there
    # the newest two (5, 6) and the two lowest val losses (2: 1.0, 4: 1.5)
    assert kept == [2, 4, 5, 6]
