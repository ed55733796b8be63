from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from model_trainer.contracts.train_config import TRAIN_DEFAULTS, ModelTrainConfig, make_train_config
from model_trainer.training.optim import WarmupCosine, make_optimizer, make_scheduler


def _cfg(learning_rate: float, weight_decay: float) -> ModelTrainConfig:
    return make_train_config(
        model_family="char_lstm",
        model_size="tiny",
        corpus_path="-",
        options={**TRAIN_DEFAULTS, "learning_rate": learning_rate, "weight_decay": weight_decay},
    )


def test_matrices_decay_and_vectors_do_not() -> None:
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 3))
    optimizer = make_optimizer(model, _cfg(0.01, 0.1), torch.device("cpu"))
    decayed, plain = optimizer.param_groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert sorted(p.dim() for p in decayed["params"]) == [2, 2]
    assert [p.dim() for p in plain["params"]] == [1]
    # PyTorch's fused kernel on the CPU too; MPS has none, so its default runs there
    assert optimizer.defaults["fused"] is True
    elsewhere = make_optimizer(model, _cfg(0.01, 0.1), torch.device("mps"))
    assert elsewhere.defaults["fused"] is False


def test_warmup_then_cosine_to_the_floor() -> None:
    schedule = WarmupCosine(kind="cosine", warmup=4, total=104, min_ratio=0.1)
    assert [schedule(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert schedule(4) == pytest.approx(1.0)
    assert schedule(54) == pytest.approx(0.55)
    assert schedule(104) == pytest.approx(0.1)
    assert schedule(500) == pytest.approx(0.1)


def test_constant_schedule_after_warmup() -> None:
    schedule = WarmupCosine(kind="constant", warmup=0, total=10, min_ratio=0.1)
    assert {schedule(s) for s in range(20)} == {1.0}


def test_scheduler_state_is_plain_json_data() -> None:
    model = nn.Linear(2, 2)
    optimizer = make_optimizer(model, _cfg(0.5, 0.0), torch.device("cpu"))
    scheduler = make_scheduler(optimizer, kind="cosine", warmup=0, total=2, min_ratio=0.0)
    optimizer.step()
    scheduler.step()
    assert scheduler.get_last_lr()[0] == pytest.approx(0.5 * 0.5 * (1 + math.cos(math.pi / 2)))
    state: dict[str, object] = scheduler.state_dict()
    # one schedule per parameter group (decayed and not)
    plain = {"kind": "cosine", "warmup": 0, "total": 2, "min_ratio": 0.0}
    assert state["lr_lambdas"] == [plain, plain]
