"""Job log lines: every field is validated on the way in and out; unknown fields are dropped."""

import orjson
import pytest

from platform_core.job_logs import (
    JobLogLine,
    decode_log_line,
    encode_log_line,
    log_lines_from_object,
    make_log_line,
)
from platform_core.json_types import JSONObject, PayloadError, load_json_object

FULL: JobLogLine = {
    "ts": "2026-11-01T10:31:05.123+00:00",
    "level": "INFO",
    "logger": "model_trainer.worker.job_utils",
    "message": "job started: train",
    "job_id": "j1",
    "attempt": 2,
    "fields": {"type": "train", "config": {"max_steps": 40, "learning_rate": 0.004}},
}
# The same line as plain JSON data, to edit into invalid ones.
FULL_OBJECT = load_json_object(encode_log_line(FULL))


def raw(obj: JSONObject) -> str:
    """JSON for a dict that need not be a valid line (the encoder only takes valid ones)."""
    return orjson.dumps(obj).decode()


def test_a_line_survives_encoding_and_decoding_unchanged() -> None:
    assert decode_log_line(encode_log_line(FULL)) == FULL


def test_optional_fields_are_absent_unless_given() -> None:
    line = make_log_line(
        ts="2026-11-01T10:31:05Z", level="WARNING", logger="py.warnings", message="m", job_id="j"
    )
    assert line == {
        "ts": "2026-11-01T10:31:05Z",
        "level": "WARNING",
        "logger": "py.warnings",
        "message": "m",
        "job_id": "j",
    }
    assert decode_log_line(encode_log_line(line)) == line


def test_a_newer_writers_extra_field_is_dropped() -> None:
    payload = encode_log_line(FULL)[:-1] + ',"span_id":"abc"}'
    assert decode_log_line(payload) == FULL


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"ts": "yesterday"}, "ts"),
        ({"ts": 1700000000}, "ts"),
        ({"level": ""}, "level"),
        ({"level": None}, "level"),
        ({"logger": 3}, "logger"),
        ({"message": ["a"]}, "message"),
        ({"job_id": ""}, "job_id"),
        ({"attempt": 0}, "attempt"),
        ({"attempt": "1"}, "attempt"),
        ({"attempt": True}, "attempt"),
        ({"fields": [1, 2]}, "fields"),
    ],
)
def test_a_mistyped_or_out_of_range_field_is_refused_by_name(
    changes: JSONObject, field: str
) -> None:
    with pytest.raises(PayloadError) as caught:
        decode_log_line(raw({**FULL_OBJECT, **changes}))
    assert caught.value.field == field


@pytest.mark.parametrize("missing", ["ts", "level", "logger", "message", "job_id"])
def test_a_missing_required_field_is_refused_by_name(missing: str) -> None:
    obj = {key: value for key, value in FULL_OBJECT.items() if key != missing}
    with pytest.raises(PayloadError) as caught:
        decode_log_line(raw(obj))
    assert caught.value.field == missing


def test_a_payload_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(PayloadError):
        decode_log_line(b"[1, 2]")


def test_the_lines_of_an_answer_are_each_validated() -> None:
    line = FULL_OBJECT
    assert log_lines_from_object({"job_id": "j1", "lines": [line, line]}) == [FULL, FULL]
    assert log_lines_from_object({"lines": []}) == []
    with pytest.raises(PayloadError) as missing:
        log_lines_from_object({"job_id": "j1"})
    assert missing.value.field == "lines"
    with pytest.raises(PayloadError) as not_object:
        log_lines_from_object({"lines": [line, "INFO job started"]})
    assert not_object.value.field == "lines[1]"
    with pytest.raises(PayloadError) as bad_line:
        log_lines_from_object({"lines": [{**line, "attempt": -1}]})
    assert bad_line.value.field == "attempt"
