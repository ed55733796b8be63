"""Lifecycle events survive the wire exactly, and every bad field is named on decode."""

import re
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.support.event_times import ISO_UTC_MILLIS, REFUSED_TIMES, event_times, is_event_time

from platform_core.job_events import (
    ERROR_KINDS,
    JOB_EVENT_TYPES,
    JobCompletedV1,
    JobEventV1,
    JobFailedV1,
    JobProgressV1,
    JobStartedV1,
    decode_job_event,
    encode_job_event,
    is_completed,
    is_failed,
    is_progress,
    is_started,
    make_completed_event,
    make_failed_event,
    make_progress_event,
    make_started_event,
)
from platform_core.json_types import JSONObject, JSONValue, PayloadError, load_json_object

TEXT = st.text(max_size=12)
INTS = st.integers(min_value=-(2**63), max_value=2**63 - 1)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
JSON_SCALARS: st.SearchStrategy[JSONValue] = (
    st.none() | st.booleans() | INTS | FLOATS | st.text(max_size=6)
)


def _containers(children: st.SearchStrategy[JSONValue]) -> st.SearchStrategy[JSONValue]:
    return st.lists(children, max_size=3) | st.dictionaries(
        st.text(max_size=4), children, max_size=3
    )


JSON_VALUES: st.SearchStrategy[JSONValue] = st.recursive(JSON_SCALARS, _containers, max_leaves=6)
JSON_OBJECTS: st.SearchStrategy[JSONObject] = st.dictionaries(
    st.text(max_size=4), JSON_VALUES, max_size=3
)


def _is_str(value: JSONValue) -> bool:
    return isinstance(value, str)


def _is_int(value: JSONValue) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_float(value: JSONValue) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_object(value: JSONValue) -> bool:
    return isinstance(value, dict)


def _is_error_kind(value: JSONValue) -> bool:
    return value in ERROR_KINDS


def _is_event_type(value: JSONValue) -> bool:
    return value in JOB_EVENT_TYPES


ACCEPTS: dict[str, Callable[[JSONValue], bool]] = {
    "type": _is_event_type,
    "job_id": _is_str,
    "user_id": _is_int,
    "queue": _is_str,
    "progress": _is_float,
    "message": _is_str,
    "payload": _is_object,
    "result_id": _is_str,
    "result_bytes": _is_int,
    "error_kind": _is_error_kind,
    "code": _is_str,
    "ts": is_event_time,
}

SHAPES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "trainer.job.started.v1": (JobStartedV1.__required_keys__, JobStartedV1.__optional_keys__),
    "trainer.job.progress.v1": (JobProgressV1.__required_keys__, JobProgressV1.__optional_keys__),
    "trainer.job.completed.v1": (
        JobCompletedV1.__required_keys__,
        JobCompletedV1.__optional_keys__,
    ),
    "trainer.job.failed.v1": (JobFailedV1.__required_keys__, JobFailedV1.__optional_keys__),
}


def _started(full: bool) -> st.SearchStrategy[JobStartedV1]:
    return st.builds(
        make_started_event, job_id=TEXT, user_id=INTS, queue=TEXT, ts=event_times(full)
    )


def _progress(full: bool) -> st.SearchStrategy[JobProgressV1]:
    payload = JSON_OBJECTS if full else st.none() | JSON_OBJECTS
    return st.builds(
        make_progress_event,
        job_id=TEXT,
        user_id=INTS,
        progress=st.floats(min_value=0.0, max_value=1.0) | st.integers(0, 1),
        message=TEXT,
        payload=payload,
        ts=event_times(full),
    )


def _completed(full: bool) -> st.SearchStrategy[JobCompletedV1]:
    return st.builds(
        make_completed_event,
        job_id=TEXT,
        user_id=INTS,
        result_id=TEXT,
        result_bytes=st.integers(min_value=0, max_value=2**63 - 1),
        ts=event_times(full),
    )


def _failed(full: bool) -> st.SearchStrategy[JobFailedV1]:
    return st.builds(
        make_failed_event,
        job_id=TEXT,
        user_id=INTS,
        error_kind=st.sampled_from(ERROR_KINDS),
        code=TEXT,
        message=TEXT,
        ts=event_times(full),
    )


EVENTS: dict[str, Callable[[bool], st.SearchStrategy[JobEventV1]]] = {
    "trainer.job.started.v1": _started,
    "trainer.job.progress.v1": _progress,
    "trainer.job.completed.v1": _completed,
    "trainer.job.failed.v1": _failed,
}
ANY_EVENT = st.one_of([strategy(False) for strategy in EVENTS.values()])


def _wrong_values(field: str, *, nullable: bool) -> st.SearchStrategy[JSONValue]:
    """Values of any JSON type the field must refuse; null means absent when nullable."""
    accepts = ACCEPTS[field]

    def refused(value: JSONValue) -> bool:
        return not accepts(value) and not (nullable and value is None)

    return JSON_VALUES.filter(refused)


def _wire(event: JobEventV1) -> JSONObject:
    return load_json_object(encode_job_event(event))


def _decode_wire(wire: JSONObject) -> JobEventV1:
    return decode_job_event(orjson.dumps(wire))


def _field_error(wire: JSONObject) -> str:
    with pytest.raises(PayloadError) as info:
        _decode_wire(wire)
    return info.value.field


def test_event_types_cover_every_shape() -> None:
    assert set(JOB_EVENT_TYPES) == set(SHAPES) == set(EVENTS)


@settings(max_examples=80, deadline=None)
@given(event=ANY_EVENT)
def test_round_trip_is_exact(event: JobEventV1) -> None:
    encoded = encode_job_event(event)
    assert decode_job_event(encoded) == event
    assert decode_job_event(encoded.encode("utf-8")) == event


@pytest.mark.parametrize("event_type", JOB_EVENT_TYPES)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_removing_a_required_field_names_it(event_type: str, data: st.DataObject) -> None:
    wire = _wire(data.draw(EVENTS[event_type](True)))
    required, _ = SHAPES[event_type]
    for field in required:
        broken = {key: value for key, value in wire.items() if key != field}
        assert _field_error(broken) == field


@pytest.mark.parametrize("event_type", JOB_EVENT_TYPES)
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


@pytest.mark.parametrize("event_type", JOB_EVENT_TYPES)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_a_wrongly_typed_field_is_named(event_type: str, data: st.DataObject) -> None:
    wire = _wire(data.draw(EVENTS[event_type](True)))
    required, optional = SHAPES[event_type]
    for field in required | optional:
        wrong = _wrong_values(field, nullable=field in optional)
        assert _field_error({**wire, field: data.draw(wrong, label=field)}) == field


@settings(max_examples=40, deadline=None)
@given(event=ANY_EVENT, extra=JSON_OBJECTS)
def test_unknown_extra_fields_are_dropped(event: JobEventV1, extra: JSONObject) -> None:
    unknown = {f"x_{key}": value for key, value in extra.items()}
    assert _decode_wire({**unknown, **_wire(event)}) == event


def test_invalid_json_is_rejected() -> None:
    with pytest.raises(PayloadError, match="not valid JSON") as info:
        decode_job_event("{not json")
    assert info.value.field == "$"


def test_non_object_json_is_rejected() -> None:
    with pytest.raises(PayloadError, match="must be a JSON object, got list") as info:
        decode_job_event("[1, 2]")
    assert info.value.field == "$"


def test_unknown_type_names_type_and_the_allowed_values() -> None:
    with pytest.raises(PayloadError, match=r"trainer\.job\.started\.v1.*got 'trainer\.job\.x'"):
        decode_job_event('{"type": "trainer.job.x", "job_id": "j", "user_id": 1}')


def test_missing_type_is_named() -> None:
    with pytest.raises(PayloadError, match="field 'type' is required") as info:
        decode_job_event('{"job_id": "j", "user_id": 1, "queue": "train"}')
    assert info.value.field == "type"


def test_bool_for_int_field_is_rejected() -> None:
    wire = _wire(make_started_event(job_id="j", user_id=1, queue="train"))
    with pytest.raises(PayloadError, match="field 'user_id' must be an int, got bool"):
        _decode_wire({**wire, "user_id": True})


def test_int_for_float_field_decodes_as_float() -> None:
    payload = '{"type": "trainer.job.progress.v1", "job_id": "j", "user_id": 7, '
    event = decode_job_event(payload + '"progress": 1, "message": "done"}')
    assert is_progress(event)
    assert event["progress"] == 1.0
    assert isinstance(event["progress"], float)


def test_progress_factory_keeps_payload_only_when_given() -> None:
    bare = make_progress_event(job_id="j", user_id=1, progress=0.5, message="half")
    assert "payload" not in bare
    full = make_progress_event(
        job_id="j", user_id=1, progress=0, message="start", payload={"epoch": 1}
    )
    assert full["payload"] == {"epoch": 1}
    assert isinstance(full["progress"], float)


@pytest.mark.parametrize("progress", [-0.01, 1.01, float("nan")])
def test_progress_outside_unit_interval_is_refused(progress: float) -> None:
    with pytest.raises(PayloadError, match="'progress' must be within") as info:
        make_progress_event(job_id="j", user_id=1, progress=progress, message="m")
    assert info.value.field == "progress"


def test_progress_outside_unit_interval_is_refused_on_decode() -> None:
    wire = _wire(make_progress_event(job_id="j", user_id=1, progress=1.0, message="m"))
    assert _field_error({**wire, "progress": 2}) == "progress"


def test_negative_result_bytes_is_refused() -> None:
    with pytest.raises(PayloadError, match="'result_bytes' must be >= 0, got -1") as info:
        make_completed_event(job_id="j", user_id=1, result_id="r", result_bytes=-1)
    assert info.value.field == "result_bytes"


def test_unknown_error_kind_is_named() -> None:
    event = make_failed_event(job_id="j", user_id=1, error_kind="user", code="C", message="m")
    with pytest.raises(PayloadError, match="'user', 'system', got 'admin'"):
        _decode_wire({**_wire(event), "error_kind": "admin"})


def test_non_finite_float_in_payload_is_refused_on_encode() -> None:
    event = make_progress_event(
        job_id="j", user_id=1, progress=0.1, message="m", payload={"loss": [1.0, float("inf")]}
    )
    with pytest.raises(PayloadError, match="must be a finite number") as info:
        encode_job_event(event)
    assert info.value.field == "payload.loss[1]"


SAMPLES: list[JobEventV1] = [
    make_started_event(job_id="j", user_id=1, queue="train"),
    make_progress_event(job_id="j", user_id=1, progress=0.5, message="m"),
    make_completed_event(job_id="j", user_id=1, result_id="r", result_bytes=3),
    make_failed_event(job_id="j", user_id=1, error_kind="system", code="C", message="m"),
]
GUARDS: list[Callable[[JobEventV1], bool]] = [is_started, is_progress, is_completed, is_failed]


@pytest.mark.parametrize("index", range(len(SAMPLES)))
def test_each_type_guard_accepts_only_its_own_type(index: int) -> None:
    verdicts = [guard(SAMPLES[index]) for guard in GUARDS]
    assert verdicts == [position == index for position in range(len(GUARDS))]


def test_failed_event_narrows_to_its_error_fields() -> None:
    event = decode_job_event(encode_job_event(SAMPLES[3]))
    assert is_failed(event)
    assert (event["error_kind"], event["code"]) == ("system", "C")


def test_every_event_is_stamped_with_the_time_it_was_made() -> None:
    now = datetime.now(UTC)
    before = now.replace(microsecond=now.microsecond // 1000 * 1000)
    made = [
        make_started_event(job_id="j", user_id=1, queue="train"),
        make_progress_event(job_id="j", user_id=1, progress=0.5, message="m"),
        make_completed_event(job_id="j", user_id=1, result_id="r", result_bytes=3),
        make_failed_event(job_id="j", user_id=1, error_kind="user", code="C", message="m"),
    ]
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
    made = make_failed_event(job_id="j", user_id=1, error_kind="user", code="C", message="m", ts=ts)
    assert made["ts"] == ts
    assert decode_job_event(encode_job_event(made))["ts"] == ts


@pytest.mark.parametrize("ts", REFUSED_TIMES)
def test_a_ts_that_is_not_an_iso_utc_time_is_refused(ts: str) -> None:
    wire = _wire(SAMPLES[0])
    assert _field_error({**wire, "ts": ts}) == "ts"
    with pytest.raises(PayloadError, match="field 'ts' must be"):
        make_started_event(job_id="j", user_id=1, queue="train", ts=ts)
