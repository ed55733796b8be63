"""Study records read back from Redis: a user's studies are bounded, and a malformed record
names the field that is wrong instead of flowing on half-typed."""

from __future__ import annotations

import fakeredis
import orjson
import pytest

from model_trainer.contracts import studies as S
from model_trainer.contracts.studies import ParamSpec, StudyRecord
from model_trainer.errors import ModelTrainerError
from model_trainer.storage.studies import StudyStore
from platform_core.json_types import PayloadError


def _record(study_id: str) -> StudyRecord:
    return {
        "study_id": study_id,
        "user_id": 1,
        "user": "alice",
        "key_id": "a" * 12,
        "admin": False,
        "spec": {
            "name": "",
            "base": {"model_family": "char_lstm"},
            "search_space": [
                {
                    "name": "lr_schedule",
                    "type": "categorical",
                    "low": None,
                    "high": None,
                    "step": None,
                    "log": False,
                    "choices": ["cosine", "constant"],
                }
            ],
            "sampler": "tpe",
            "pruner": "none",
            "pruner_startup_trials": 5,
            "pruner_warmup_steps": 0,
            "n_trials": 2,
            "parallelism": 1,
            "timeout_s": None,
            "metric": "val_loss",
            "seed": 0,
        },
        "status": "running",
        "ended_by": None,
        "error": None,
        "created_at": "2026-12-01T00:00:00.000+00:00",
        "finished_at": None,
        "deadline": None,
    }


def test_a_record_round_trips_and_a_user_holds_a_bounded_number(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = StudyStore(fakeredis.FakeRedis())
    store.create(_record("study-a"))
    assert store.get("study-a") == _record("study-a")
    monkeypatch.setattr("model_trainer.storage.studies.MAX_STUDIES_PER_USER", 1)
    with pytest.raises(ModelTrainerError) as refused:
        store.create(_record("study-b"))
    assert refused.value.code == "QUOTA_EXCEEDED"
    assert store.get("study-b") is None


@pytest.mark.parametrize(
    ("space", "field"),
    [
        ("not a list", "search_space"),
        (["not an object"], "search_space"),
        ([{"name": "x", "type": "categorical", "log": False, "choices": "ab"}], "choices"),
        ([{"name": "x", "type": "categorical", "log": False, "choices": [[1]]}], "choices"),
        ([{"name": "x", "type": "bogus", "log": False}], "type"),
    ],
)
def test_a_malformed_search_space_names_its_field(space: object, field: str) -> None:
    redis = fakeredis.FakeRedis()
    record = _record("study-a")
    raw = {**record, "spec": {**record["spec"], "search_space": space}}
    redis.set("trainer:study:study-a", orjson.dumps(raw))
    with pytest.raises(PayloadError) as caught:
        StudyStore(redis).get("study-a")
    assert caught.value.field == field


def test_grid_values_are_choices_or_every_stepped_int() -> None:
    param = _record("s")["spec"]["search_space"][0]
    assert S.grid_values(param) == ["cosine", "constant"]
    ints: ParamSpec = {
        "name": "batch_size",
        "type": "int",
        "low": 2.0,
        "high": 8.0,
        "step": 3.0,
        "log": False,
        "choices": None,
    }
    assert S.grid_values(ints) == [2, 5, 8]
    assert S.grid_values({**ints, "type": "float"}) is None
