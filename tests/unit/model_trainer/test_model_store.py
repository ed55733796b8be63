"""The model registry's Redis records: names per user, numbered immutable versions, aliases
with a val-loss gate, history and rollback, and references resolved to versions."""

from __future__ import annotations

import fakeredis
import pytest

from model_trainer.contracts import limits
from model_trainer.errors import ModelTrainerError
from model_trainer.storage.api_keys import Principal
from model_trainer.storage.models import ModelStore
from model_trainer.storage.provenance import VersionMetrics, VersionSource
from platform_core.json_types import PayloadError
from platform_workers.redis_conn import as_text

ALICE: Principal = {"user_id": 1, "user": "alice", "admin": False, "key_id": "a" * 12}
BOB: Principal = {"user_id": 2, "user": "bob", "admin": False, "key_id": "b" * 12}
NOW = "2026-01-01T00:00:00.000+00:00"


def source(
    run_id: str = "r1", val_loss: float | None = 1.5, step: int | None = None
) -> VersionSource:
    """A version's provenance: a final model, or the checkpoint at `step`."""
    metrics: VersionMetrics
    if step is None:
        metrics = {
            "loss": 1.25,
            "perplexity": 3.49,
            "val_loss": val_loss,
            "val_perplexity": None,
            "steps": 40,
            "epochs_completed": 1,
            "tokens_seen": 1280,
            "tokens_per_second": 900.0,
            "elapsed_s": 1.5,
            "resumed_from_step": None,
            "out_dir": f"runs/{run_id}",
            "stop_reason": "completed",
            "best_val_loss": val_loss,
            "best_step": None if val_loss is None else 40,
        }
    else:
        metrics = {
            "step": step,
            "epoch": 0,
            "train_loss": 1.4,
            "val_loss": val_loss,
            "created_at": NOW,
        }
    return {
        "run_id": run_id,
        "step": step,
        "corpus_sha256": "ab" * 32,
        "tokenizer_id": f"char-{run_id}",
        "model_family": "char_lstm",
        "model_size": "tiny",
        "config": {"learning_rate": 0.003, "max_steps": 40, "grad_clip": None},
        "metrics": metrics,
        "git_commit": "c0ffee",
        "library_versions": {"python": "3.11", "torch": "2.5"},
    }


@pytest.fixture
def fake() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


@pytest.fixture
def store(fake: fakeredis.FakeRedis) -> ModelStore:
    return ModelStore(fake)


@pytest.fixture
def model(store: ModelStore) -> str:
    store.create(ALICE, "shakespeare", "plays", NOW)
    return "shakespeare"


def code_of(error: pytest.ExceptionInfo[ModelTrainerError]) -> tuple[str, object]:
    return error.value.code, error.value.details.get("field")


def versions_with_losses(store: ModelStore, model: str, *losses: float | None) -> None:
    for index, loss in enumerate(losses):
        store.add_version(ALICE, model, source(f"r{index + 1}", val_loss=loss), NOW)


def test_a_model_is_created_once_per_user(store: ModelStore) -> None:
    created = store.create(ALICE, "m", "first", NOW)
    assert created == {
        "name": "m",
        "user_id": 1,
        "description": "first",
        "created_at": NOW,
        "created_by": "alice",
        "latest_version": None,
        "aliases": {},
    }
    assert store.get(1, "m") == created
    with pytest.raises(ModelTrainerError) as again:
        store.create(ALICE, "m", "second", NOW)
    assert code_of(again) == ("MODEL_EXISTS", "name")
    assert store.get(1, "m")["description"] == "first"
    # Bob's names are his own.
    assert store.create(BOB, "m", "bob's", NOW)["user_id"] == 2
    assert [record["description"] for record in store.list_for_user(1)] == ["first"]


def test_models_list_by_name_with_their_aliases(store: ModelStore) -> None:
    for name in ("zeta", "alpha", "mid"):
        store.create(ALICE, name, "", NOW)
    store.add_version(ALICE, "mid", source(), NOW)
    store.promote(1, "mid", "production", 1, force=False)
    listed = store.list_for_user(1)
    assert [record["name"] for record in listed] == ["alpha", "mid", "zeta"]
    assert listed[1]["aliases"] == {"production": 1}
    assert listed[1]["latest_version"] == 1
    assert store.list_for_user(2) == []


@pytest.mark.parametrize("name", ["", "Upper", "-lead", "a:b", "a/b", "a@b", "x" * 65])
def test_a_name_outside_the_pattern_is_refused(store: ModelStore, name: str) -> None:
    with pytest.raises(ModelTrainerError) as refused:
        store.create(ALICE, name, "", NOW)
    assert code_of(refused) == ("INVALID_CONFIG", "name")


def test_a_user_may_hold_only_so_many_models(
    store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "MAX_MODELS_PER_USER", 2)
    store.create(ALICE, "a", "", NOW)
    store.create(ALICE, "b", "", NOW)
    with pytest.raises(ModelTrainerError) as refused:
        store.create(ALICE, "c", "", NOW)
    assert refused.value.code == "QUOTA_EXCEEDED"
    store.create(BOB, "c", "", NOW)


def test_versions_are_numbered_in_order_and_keep_their_provenance(
    store: ModelStore, model: str
) -> None:
    first = store.add_version(ALICE, model, source("r1"), NOW)
    second = store.add_version(ALICE, model, source("r1", step=20, val_loss=None), NOW)
    assert (first["version"], second["version"]) == (1, 2)
    assert first == {
        **source("r1"),
        "name": model,
        "version": 1,
        "user_id": 1,
        "registered_by": "alice",
        "created_at": NOW,
    }
    assert store.version(1, model, 1) == first
    assert store.version(1, model, 2) == second
    assert store.get(1, model)["latest_version"] == 2


def test_versions_of_a_missing_model_or_number_are_not_found(store: ModelStore, model: str) -> None:
    with pytest.raises(ModelTrainerError) as no_model:
        store.add_version(ALICE, "nope", source(), NOW)
    assert code_of(no_model) == ("MODEL_NOT_FOUND", "name")
    with pytest.raises(ModelTrainerError) as no_version:
        store.version(1, model, 1)
    assert code_of(no_version) == ("MODEL_NOT_FOUND", "version")
    with pytest.raises(ModelTrainerError) as other_user:
        store.get(2, model)
    assert code_of(other_user) == ("MODEL_NOT_FOUND", "name")


def test_a_model_may_hold_only_so_many_versions(
    store: ModelStore, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "MAX_VERSIONS_PER_MODEL", 1)
    store.add_version(ALICE, model, source(), NOW)
    with pytest.raises(ModelTrainerError) as refused:
        store.add_version(ALICE, model, source(), NOW)
    assert refused.value.code == "QUOTA_EXCEEDED"
    assert store.get(1, model)["latest_version"] == 1


def test_versions_page_oldest_first(store: ModelStore, model: str) -> None:
    versions_with_losses(store, model, 1.0, 2.0, 3.0, 4.0, 5.0)
    page, after = store.versions(1, model, after=0, limit=2)
    assert ([v["version"] for v in page], after) == ([1, 2], 2)
    page, after = store.versions(1, model, after=2, limit=2)
    assert ([v["version"] for v in page], after) == ([3, 4], 4)
    page, after = store.versions(1, model, after=4, limit=2)
    assert ([v["version"] for v in page], after) == ([5], None)
    assert store.versions(1, model, after=5, limit=2) == ([], None)


def test_promotion_keeps_the_alias_history(store: ModelStore, model: str) -> None:
    versions_with_losses(store, model, 2.0, 1.5, 1.0)
    assert store.promote(1, model, "production", 1, force=False) == {
        "alias": "production",
        "version": 1,
        "history": [],
    }
    store.promote(1, model, "production", 2, force=False)
    state = store.promote(1, model, "production", 3, force=False)
    assert state == {"alias": "production", "version": 3, "history": [2, 1]}
    assert store.alias(1, model, "production") == state
    # The holder promoted again changes nothing.
    assert store.promote(1, model, "production", 3, force=False) == state
    assert store.get(1, model)["aliases"] == {"production": 3}


def test_the_gate_refuses_a_worse_val_loss_unless_forced(store: ModelStore, model: str) -> None:
    versions_with_losses(store, model, 1.0, 1.5)
    store.promote(1, model, "production", 1, force=False)
    with pytest.raises(ModelTrainerError) as refused:
        store.promote(1, model, "production", 2, force=False)
    assert refused.value.code == "PROMOTION_REFUSED"
    assert refused.value.details == {
        "alias": "production",
        "version": 2,
        "val_loss": 1.5,
        "holder_version": 1,
        "holder_val_loss": 1.0,
    }
    assert store.alias(1, model, "production")["version"] == 1
    forced = store.promote(1, model, "production", 2, force=True)
    assert forced == {"alias": "production", "version": 2, "history": [1]}


@pytest.mark.parametrize(
    ("holder", "candidate", "allowed"),
    [(None, 3.0, True), (None, None, True), (1.0, None, False), (2.0, 2.0, True)],
)
def test_the_gate_on_missing_and_equal_val_losses(
    store: ModelStore, model: str, holder: float | None, candidate: float | None, allowed: bool
) -> None:
    versions_with_losses(store, model, holder, candidate)
    store.promote(1, model, "staging", 1, force=False)
    if allowed:
        assert store.promote(1, model, "staging", 2, force=False)["version"] == 2
        return
    with pytest.raises(ModelTrainerError) as refused:
        store.promote(1, model, "staging", 2, force=False)
    assert refused.value.code == "PROMOTION_REFUSED"


def test_promoting_a_missing_version_or_to_a_bad_alias_is_refused(
    store: ModelStore, model: str
) -> None:
    versions_with_losses(store, model, 1.0)
    with pytest.raises(ModelTrainerError) as missing:
        store.promote(1, model, "production", 2, force=True)
    assert code_of(missing) == ("MODEL_NOT_FOUND", "version")
    with pytest.raises(ModelTrainerError) as bad:
        store.promote(1, model, "Prod!", 1, force=True)
    assert code_of(bad) == ("INVALID_CONFIG", "alias")


def test_a_model_may_hold_only_so_many_aliases(
    store: ModelStore, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "MAX_ALIASES_PER_MODEL", 1)
    versions_with_losses(store, model, 1.0)
    store.promote(1, model, "production", 1, force=False)
    with pytest.raises(ModelTrainerError) as refused:
        store.promote(1, model, "staging", 1, force=False)
    assert refused.value.code == "QUOTA_EXCEEDED"


def test_alias_history_is_bounded(
    store: ModelStore, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "MAX_ALIAS_HISTORY", 2)
    versions_with_losses(store, model, 4.0, 3.0, 2.0, 1.0)
    for version in (1, 2, 3, 4):
        state = store.promote(1, model, "production", version, force=False)
    assert state["history"] == [3, 2]
    assert store.alias(1, model, "production")["history"] == [3, 2]


def test_rollback_returns_to_the_previous_holders_in_turn(store: ModelStore, model: str) -> None:
    versions_with_losses(store, model, 3.0, 2.0, 1.0)
    for version in (1, 2, 3):
        store.promote(1, model, "production", version, force=False)
    assert store.rollback(1, model, "production") == {
        "alias": "production",
        "version": 2,
        "history": [1],
    }
    assert store.rollback(1, model, "production")["version"] == 1
    with pytest.raises(ModelTrainerError) as empty:
        store.rollback(1, model, "production")
    assert code_of(empty) == ("ALIAS_NO_HISTORY", "alias")
    assert store.alias(1, model, "production") == {
        "alias": "production",
        "version": 1,
        "history": [],
    }


def test_an_unknown_alias_is_not_found(store: ModelStore, model: str) -> None:
    for action in (store.alias, store.rollback, store.delete_alias):
        with pytest.raises(ModelTrainerError) as missing:
            action(1, model, "production")
        assert code_of(missing) == ("MODEL_NOT_FOUND", "alias")


def test_deleting_an_alias_forgets_it_and_its_history(store: ModelStore, model: str) -> None:
    versions_with_losses(store, model, 2.0, 1.0)
    store.promote(1, model, "production", 1, force=False)
    store.promote(1, model, "production", 2, force=False)
    assert store.delete_alias(1, model, "production")["history"] == [1]
    assert store.get(1, model)["aliases"] == {}
    assert store.promote(1, model, "production", 1, force=False)["history"] == []


def test_references_resolve_to_versions(store: ModelStore, model: str) -> None:
    versions_with_losses(store, model, 2.0, 1.0)
    store.promote(1, model, "production", 2, force=False)
    assert store.resolve(1, f"{model}/1")["version"] == 1
    assert store.resolve(1, f"{model}@production")["version"] == 2


@pytest.mark.parametrize(
    ("ref", "code"),
    [
        ("shakespeare/3", "MODEL_NOT_FOUND"),
        ("shakespeare@staging", "MODEL_NOT_FOUND"),
        ("nope@production", "MODEL_NOT_FOUND"),
        ("nope/1", "MODEL_NOT_FOUND"),
        ("shakespeare", "INVALID_CONFIG"),
        ("shakespeare/0", "INVALID_CONFIG"),
        ("shakespeare/x", "INVALID_CONFIG"),
        ("Bad/1", "INVALID_CONFIG"),
        ("shakespeare@Bad", "INVALID_CONFIG"),
        ("../x@production", "INVALID_CONFIG"),
    ],
)
def test_references_that_name_nothing_are_refused_naming_the_field(
    store: ModelStore, model: str, ref: str, code: str
) -> None:
    versions_with_losses(store, model, 1.0)
    with pytest.raises(ModelTrainerError) as refused:
        store.resolve(1, ref)
    assert code_of(refused) == (code, "model")


def test_a_damaged_version_record_is_refused_by_field(
    store: ModelStore, fake: fakeredis.FakeRedis, model: str
) -> None:
    versions_with_losses(store, model, 1.0)
    key = f"trainer:user:1:model:{model}:version:1"
    stored = fake.get(key)
    assert stored is not None
    fake.set(key, as_text(stored).replace('"steps":40', '"steps":"40"'))
    with pytest.raises(PayloadError) as damaged:
        store.version(1, model, 1)
    assert damaged.value.field == "steps"
