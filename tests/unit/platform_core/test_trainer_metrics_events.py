"""Metrics events survive the wire exactly, and every bad field is named on decode."""

import re
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.support.event_times import ISO_UTC_MILLIS, REFUSED_TIMES, event_times, is_event_time

from platform_core.json_types import JSONObject, JSONValue, PayloadError, load_json_object
from platform_core.trainer_metrics_events import (
    TRAINER_METRICS_EVENT_TYPES,
    TrainerAlertV1,
    TrainerCompletedMetricsV1,
    TrainerConfigV1,
    TrainerMetricsEventV1,
    TrainerProgressMetricsV1,
    decode_trainer_metrics_event,
    encode_trainer_metrics_event,
    is_alert,
    is_completed_metrics,
    is_config,
    is_progress_metrics,
    make_alert_event,
    make_completed_metrics_event,
    make_config_event,
    make_progress_metrics_event,
)

TEXT = st.text(max_size=12)
INTS = st.integers(min_value=-(2**63), max_value=2**63 - 1)
FLOATS = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**53), 2**53)
JSON_SCALARS: st.SearchStrategy[JSONValue] = (
    st.none()
    | st.booleans()
    | INTS
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
)


def _containers(children: st.SearchStrategy[JSONValue]) -> st.SearchStrategy[JSONValue]:
    return st.lists(children, max_size=3) | st.dictionaries(
        st.text(max_size=4), children, max_size=3
    )


JSON_VALUES: st.SearchStrategy[JSONValue] = st.recursive(JSON_SCALARS, _containers, max_leaves=6)


def _is_str(value: JSONValue) -> bool:
    return isinstance(value, str)


def _is_int(value: JSONValue) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_float(value: JSONValue) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_event_type(value: JSONValue) -> bool:
    return value in TRAINER_METRICS_EVENT_TYPES


STR_FIELDS = (
    "job_id",
    "model_family",
    "model_size",
    "queue",
    "device",
    "artifact_path",
    "stop_reason",
    "kind",
    "message",
)
INT_FIELDS = (
    "user_id",
    "total_epochs",
    "total_steps",
    "cpu_cores",
    "memory_mb",
    "optimal_threads",
    "batch_size",
    "max_seq_len",
    "num_params",
    "epoch",
    "step",
    "steps",
    "best_step",
)
FLOAT_FIELDS = (
    "learning_rate",
    "loss",
    "val_loss",
    "tokens_per_second",
    "perplexity",
    "val_perplexity",
    "elapsed_s",
    "grad_norm",
    "best_val_loss",
    "value",
    "threshold",
)
ACCEPTS: dict[str, Callable[[JSONValue], bool]] = {
    "type": _is_event_type,
    **dict.fromkeys(STR_FIELDS, _is_str),
    **dict.fromkeys(INT_FIELDS, _is_int),
    **dict.fromkeys(FLOAT_FIELDS, _is_float),
    "ts": is_event_time,
}

SHAPES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "trainer.metrics.config.v1": (
        TrainerConfigV1.__required_keys__,
        TrainerConfigV1.__optional_keys__,
    ),
    "trainer.metrics.progress.v1": (
        TrainerProgressMetricsV1.__required_keys__,
        TrainerProgressMetricsV1.__optional_keys__,
    ),
    "trainer.metrics.completed.v1": (
        TrainerCompletedMetricsV1.__required_keys__,
        TrainerCompletedMetricsV1.__optional_keys__,
    ),
    "trainer.metrics.alert.v1": (
        TrainerAlertV1.__required_keys__,
        TrainerAlertV1.__optional_keys__,
    ),
}


def _config(full: bool) -> st.SearchStrategy[TrainerConfigV1]:
    ints = INTS if full else st.none() | INTS
    return st.builds(
        make_config_event,
        job_id=TEXT,
        user_id=INTS,
        model_family=TEXT,
        model_size=TEXT,
        total_epochs=INTS,
        queue=TEXT,
        device=TEXT if full else st.none() | TEXT,
        total_steps=ints,
        cpu_cores=ints,
        memory_mb=ints,
        optimal_threads=ints,
        batch_size=ints,
        learning_rate=FLOATS if full else st.none() | FLOATS,
        max_seq_len=ints,
        num_params=ints,
        ts=event_times(full),
    )


def _progress(full: bool) -> st.SearchStrategy[TrainerProgressMetricsV1]:
    floats = FLOATS if full else st.none() | FLOATS
    return st.builds(
        make_progress_metrics_event,
        job_id=TEXT,
        user_id=INTS,
        epoch=INTS,
        total_epochs=INTS,
        step=INTS,
        loss=FLOATS,
        total_steps=INTS if full else st.none() | INTS,
        val_loss=floats,
        learning_rate=floats,
        tokens_per_second=floats,
        grad_norm=floats,
        ts=event_times(full),
    )


def _completed(full: bool) -> st.SearchStrategy[TrainerCompletedMetricsV1]:
    floats = FLOATS if full else st.none() | FLOATS
    return st.builds(
        make_completed_metrics_event,
        job_id=TEXT,
        user_id=INTS,
        loss=FLOATS,
        perplexity=FLOATS,
        artifact_path=TEXT,
        val_loss=floats,
        val_perplexity=floats,
        steps=INTS if full else st.none() | INTS,
        elapsed_s=floats,
        stop_reason=TEXT if full else st.none() | TEXT,
        best_val_loss=floats,
        best_step=INTS if full else st.none() | INTS,
        ts=event_times(full),
    )


def _alert(full: bool) -> st.SearchStrategy[TrainerAlertV1]:
    return st.builds(
        make_alert_event,
        job_id=TEXT,
        user_id=INTS,
        kind=TEXT,
        step=INTS,
        value=FLOATS,
        threshold=FLOATS,
        message=TEXT,
        ts=event_times(full),
    )


EVENTS: dict[str, Callable[[bool], st.SearchStrategy[TrainerMetricsEventV1]]] = {
    "trainer.metrics.config.v1": _config,
    "trainer.metrics.progress.v1": _progress,
    "trainer.metrics.completed.v1": _completed,
    "trainer.metrics.alert.v1": _alert,
}
ANY_EVENT = st.one_of([strategy(False) for strategy in EVENTS.values()])


def _wrong_values(field: str, *, nullable: bool) -> st.SearchStrategy[JSONValue]:
    """Values of any JSON type the field must refuse; null means absent when nullable."""
    accepts = ACCEPTS[field]

    def refused(value: JSONValue) -> bool:
        return not accepts(value) and not (nullable and value is None)

    return JSON_VALUES.filter(refused)


def _wire(event: TrainerMetricsEventV1) -> JSONObject:
    return load_json_object(encode_trainer_metrics_event(event))


def _decode_wire(wire: JSONObject) -> TrainerMetricsEventV1:
    return decode_trainer_metrics_event(orjson.dumps(wire))


def _field_error(wire: JSONObject) -> str:
    with pytest.raises(PayloadError) as info:
        _decode_wire(wire)
    return info.value.field


def test_event_types_cover_every_shape() -> None:
    assert set(TRAINER_METRICS_EVENT_TYPES) == set(SHAPES) == set(EVENTS)


def test_every_field_has_a_known_kind() -> None:
    fields = {field for required, optional in SHAPES.values() for field in required | optional}
    assert fields == set(ACCEPTS)


@settings(max_examples=80, deadline=None)
@given(event=ANY_EVENT)
def test_round_trip_is_exact(event: TrainerMetricsEventV1) -> None:
    encoded = encode_trainer_metrics_event(event)
    assert decode_trainer_metrics_event(encoded) == event
    assert decode_trainer_metrics_event(encoded.encode("utf-8")) == event


@pytest.mark.parametrize("event_type", TRAINER_METRICS_EVENT_TYPES)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_full_events_round_trip_with_every_optional_field(
    event_type: str, data: st.DataObject
) -> None:
    event = data.draw(EVENTS[event_type](True))
    assert set(event) == SHAPES[event_type][0] | SHAPES[event_type][1]
    assert decode_trainer_metrics_event(encode_trainer_metrics_event(event)) == event


@pytest.mark.parametrize("event_type", TRAINER_METRICS_EVENT_TYPES)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_removing_a_required_field_names_it(event_type: str, data: st.DataObject) -> None:
    wire = _wire(data.draw(EVENTS[event_type](True)))
    required, _ = SHAPES[event_type]
    for field in required:
        broken = {key: value for key, value in wire.items() if key != field}
        assert _field_error(broken) == field


@pytest.mark.parametrize("event_type", TRAINER_METRICS_EVENT_TYPES)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_removing_or_nulling_an_optional_field_leaves_it_out(
    event_type: str, data: st.DataObject
) -> None:
    event = data.draw(EVENTS[event_type](True))
    _, optional = SHAPES[event_type]
    for field in optional:
        removed = {key: value for key, value in _wire(event).items() if key != field}
        expected = _decode_wire(removed)
        assert field not in expected
        assert _decode_wire({**removed, field: None}) == expected
        assert expected == {key: value for key, value in event.items() if key != field}


@pytest.mark.parametrize("event_type", TRAINER_METRICS_EVENT_TYPES)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_a_wrongly_typed_field_is_named(event_type: str, data: st.DataObject) -> None:
    wire = _wire(data.draw(EVENTS[event_type](True)))
    required, optional = SHAPES[event_type]
    for field in required | optional:
        wrong = _wrong_values(field, nullable=field in optional)
        assert _field_error({**wire, field: data.draw(wrong, label=field)}) == field


@settings(max_examples=40, deadline=None)
@given(event=ANY_EVENT, extra=st.dictionaries(st.text(max_size=4), JSON_VALUES, max_size=3))
def test_unknown_extra_fields_are_dropped(event: TrainerMetricsEventV1, extra: JSONObject) -> None:
    unknown = {f"x_{key}": value for key, value in extra.items()}
    assert _decode_wire({**unknown, **_wire(event)}) == event


def test_invalid_json_is_rejected() -> None:
    with pytest.raises(PayloadError, match="not valid JSON") as info:
        decode_trainer_metrics_event(b"\xff")
    assert info.value.field == "$"


def test_non_object_json_is_rejected() -> None:
    with pytest.raises(PayloadError, match="must be a JSON object, got str") as info:
        decode_trainer_metrics_event('"trainer.metrics.config.v1"')
    assert info.value.field == "$"


def test_unknown_type_is_named() -> None:
    with pytest.raises(PayloadError, match=r"got 'trainer\.metrics\.config\.v2'") as info:
        decode_trainer_metrics_event('{"type": "trainer.metrics.config.v2"}')
    assert info.value.field == "type"


def test_bool_for_int_field_is_rejected() -> None:
    event = make_progress_metrics_event(
        job_id="j", user_id=1, epoch=0, total_epochs=2, step=10, loss=2.5
    )
    with pytest.raises(PayloadError, match="field 'epoch' must be an int, got bool"):
        _decode_wire({**_wire(event), "epoch": False})


def test_int_for_float_fields_decodes_as_float() -> None:
    event = make_completed_metrics_event(
        job_id="j", user_id=1, loss=2.0, perplexity=7.0, artifact_path="runs/r", elapsed_s=3.0
    )
    decoded = _decode_wire({**_wire(event), "loss": 2, "perplexity": 7, "elapsed_s": 3})
    assert decoded == event
    assert is_completed_metrics(decoded)
    assert all(isinstance(decoded[field], float) for field in ("loss", "perplexity", "elapsed_s"))


def test_factories_store_int_floats_as_float() -> None:
    event = make_config_event(
        job_id="j",
        user_id=1,
        model_family="gpt2",
        model_size="tiny",
        total_epochs=1,
        queue="train",
        learning_rate=1,
    )
    assert isinstance(event["learning_rate"], float)
    assert "device" not in event


def test_nan_loss_is_refused_on_encode() -> None:
    event = make_progress_metrics_event(
        job_id="j", user_id=1, epoch=0, total_epochs=1, step=1, loss=float("nan")
    )
    with pytest.raises(PayloadError, match="field 'loss' must be a finite number") as info:
        encode_trainer_metrics_event(event)
    assert info.value.field == "loss"


SAMPLES: list[TrainerMetricsEventV1] = [
    make_config_event(
        job_id="j", user_id=1, model_family="gpt2", model_size="tiny", total_epochs=1, queue="q"
    ),
    make_progress_metrics_event(job_id="j", user_id=1, epoch=0, total_epochs=1, step=1, loss=1.0),
    make_completed_metrics_event(
        job_id="j", user_id=1, loss=1.0, perplexity=2.7, artifact_path="runs/r"
    ),
    make_alert_event(
        job_id="j",
        user_id=1,
        kind="val_loss_spike",
        step=3,
        value=2.0,
        threshold=1.5,
        message="m",
    ),
]
GUARDS: list[Callable[[TrainerMetricsEventV1], bool]] = [
    is_config,
    is_progress_metrics,
    is_completed_metrics,
    is_alert,
]


@pytest.mark.parametrize("index", range(len(SAMPLES)))
def test_each_type_guard_accepts_only_its_own_type(index: int) -> None:
    verdicts = [guard(SAMPLES[index]) for guard in GUARDS]
    assert verdicts == [position == index for position in range(len(GUARDS))]


def test_config_event_narrows_to_its_fields() -> None:
    event = decode_trainer_metrics_event(encode_trainer_metrics_event(SAMPLES[0]))
    assert is_config(event)
    assert (event["model_family"], event["total_epochs"]) == ("gpt2", 1)


def _fresh_samples() -> list[TrainerMetricsEventV1]:
    return [
        make_config_event(
            job_id="j", user_id=1, model_family="gpt2", model_size="tiny", total_epochs=1, queue="q"
        ),
        make_progress_metrics_event(
            job_id="j", user_id=1, epoch=0, total_epochs=1, step=1, loss=1.0
        ),
        make_completed_metrics_event(
            job_id="j", user_id=1, loss=1.0, perplexity=2.7, artifact_path="runs/r"
        ),
        make_alert_event(
            job_id="j", user_id=1, kind="k", step=3, value=2.0, threshold=1.5, message="m"
        ),
    ]


def test_every_event_is_stamped_with_the_time_it_was_made() -> None:
    now = datetime.now(UTC)
    before = now.replace(microsecond=now.microsecond // 1000 * 1000)
    made = _fresh_samples()
    after = datetime.now(UTC)
    for event in made:
        assert re.fullmatch(ISO_UTC_MILLIS, event["ts"])
        assert before <= datetime.fromisoformat(event["ts"]) <= after


@pytest.mark.parametrize("index", range(len(SAMPLES)))
def test_an_event_from_a_publisher_without_ts_decodes_without_one(index: int) -> None:
    """Older publishers send no `ts`: accepted, and the reader's clock is never put in."""
    old = {key: value for key, value in _wire(SAMPLES[index]).items() if key != "ts"}
    event = _decode_wire(old)
    assert "ts" not in event
    assert _wire(event) == old


@pytest.mark.parametrize("ts", ["2026-12-05T01:02:03.456+00:00", "2026-12-05T01:02:03Z"])
def test_a_publishers_ts_is_kept_as_written(ts: str) -> None:
    made = make_progress_metrics_event(
        job_id="j", user_id=1, epoch=0, total_epochs=1, step=1, loss=1.0, ts=ts
    )
    assert made["ts"] == ts
    assert decode_trainer_metrics_event(encode_trainer_metrics_event(made))["ts"] == ts


@pytest.mark.parametrize("ts", REFUSED_TIMES)
def test_a_ts_that_is_not_an_iso_utc_time_is_refused(ts: str) -> None:
    assert _field_error({**_wire(SAMPLES[0]), "ts": ts}) == "ts"
    with pytest.raises(PayloadError, match="field 'ts' must be"):
        make_alert_event(
            job_id="j", user_id=1, kind="k", step=3, value=2.0, threshold=1.5, message="m", ts=ts
        )
