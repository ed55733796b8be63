"""Field readers accept exactly their JSON type and name the field when they refuse."""

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from platform_core.json_types import (
    JSONObject,
    JSONValue,
    PayloadError,
    dump_json_object,
    load_json_object,
    optional_float,
    optional_int,
    optional_object,
    optional_str,
    require_bool,
    require_float,
    require_int,
    require_literal,
    require_object,
    require_str,
)

Reader = Callable[[JSONObject, str], JSONValue]


def test_payload_error_is_a_value_error_that_names_its_field() -> None:
    error = PayloadError("user_id", "field 'user_id' must be an int, got str")
    assert isinstance(error, ValueError)
    assert error.field == "user_id"
    assert str(error) == "field 'user_id' must be an int, got str"


def test_load_json_object_accepts_str_and_bytes() -> None:
    assert load_json_object('{"a": [1, 2.5, null]}') == {"a": [1, 2.5, None]}
    assert load_json_object(b'{"a": {"b": true}}') == {"a": {"b": True}}


@pytest.mark.parametrize("payload", ["", "{", "{'a': 1}", "NaN", b"\x80"])
def test_load_json_object_refuses_invalid_json(payload: str | bytes) -> None:
    with pytest.raises(PayloadError, match="payload is not valid JSON") as info:
        load_json_object(payload)
    assert info.value.field == "$"


@pytest.mark.parametrize(
    ("payload", "found"),
    [("[]", "list"), ("1", "int"), ("1.5", "float"), ('"s"', "str"), ("true", "bool")],
)
def test_load_json_object_refuses_non_objects(payload: str, found: str) -> None:
    with pytest.raises(PayloadError, match=f"must be a JSON object, got {found}$"):
        load_json_object(payload)


def test_load_json_object_names_null_as_null() -> None:
    with pytest.raises(PayloadError, match=r"got null$"):
        load_json_object("null")


def test_dump_json_object_round_trips() -> None:
    obj: JSONObject = {"a": 1, "b": [0.5, {"c": None}], "d": "é"}
    assert load_json_object(dump_json_object(obj)) == obj


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({"loss": float("nan")}, "loss"),
        ({"loss": float("-inf")}, "loss"),
        ({"payload": {"val": float("inf")}}, "payload.val"),
        ({"payload": {"seq": [1.0, 2.0, float("nan")]}}, "payload.seq[2]"),
    ],
)
def test_dump_json_object_refuses_non_finite_floats(obj: JSONObject, field: str) -> None:
    with pytest.raises(PayloadError, match="must be a finite number") as info:
        dump_json_object(obj)
    assert info.value.field == field


READERS: list[tuple[Reader, JSONValue, str]] = [
    (require_str, "text", "a str"),
    (require_int, 3, "an int"),
    (require_float, 2.5, "a float"),
    (require_bool, False, "a bool"),
    (require_object, {"k": [1]}, "an object"),
]
WRONG_VALUES: list[tuple[JSONValue, str]] = [
    (None, "null"),
    (True, "bool"),
    (7, "int"),
    (7.5, "float"),
    ("7", "str"),
    ([7], "list"),
    ({"k": 7}, "dict"),
]


@pytest.mark.parametrize(("reader", "good", "expected"), READERS)
def test_required_readers_return_their_type(reader: Reader, good: JSONValue, expected: str) -> None:
    assert reader({"field": good}, "field") == good


@pytest.mark.parametrize(("reader", "good", "expected"), READERS)
def test_required_readers_name_a_missing_field(
    reader: Reader, good: JSONValue, expected: str
) -> None:
    with pytest.raises(PayloadError, match=r"^field 'user_id' is required$") as info:
        reader({"other": good}, "user_id")
    assert info.value.field == "user_id"


MISTYPED: list[tuple[Reader, JSONValue, str, str]] = [
    (reader, wrong, expected, found)
    for reader, good, expected in READERS
    for wrong, found in WRONG_VALUES
    if type(wrong) is not type(good) and not (reader is require_float and found == "int")
]


@pytest.mark.parametrize(("reader", "wrong", "expected", "found"), MISTYPED)
def test_required_readers_name_what_was_expected_and_found(
    reader: Reader, wrong: JSONValue, expected: str, found: str
) -> None:
    with pytest.raises(PayloadError) as info:
        reader({"user_id": wrong}, "user_id")
    assert str(info.value) == f"field 'user_id' must be {expected}, got {found}"
    assert info.value.field == "user_id"


@settings(max_examples=50, deadline=None)
@given(value=st.integers(min_value=-(2**63), max_value=2**64 - 1))
def test_require_float_accepts_ints_and_returns_float(value: int) -> None:
    result = require_float({"lr": value}, "lr")
    assert isinstance(result, float)
    assert result == float(value)


@settings(max_examples=20, deadline=None)
@given(value=st.booleans())
def test_bool_is_not_a_number(value: bool) -> None:
    with pytest.raises(PayloadError, match="got bool"):
        require_int({"n": value}, "n")
    with pytest.raises(PayloadError, match="got bool"):
        require_float({"n": value}, "n")


def test_require_float_returns_floats_unchanged() -> None:
    assert require_float({"loss": -0.125}, "loss") == -0.125


OPTIONAL_READERS: list[tuple[Reader, JSONValue, JSONValue]] = [
    (optional_str, "cpu", 1),
    (optional_int, 4, 4.0),
    (optional_float, 0.5, "0.5"),
    (optional_object, {"a": 1}, [1]),
]


@pytest.mark.parametrize(("reader", "good", "wrong"), OPTIONAL_READERS)
def test_optional_readers_treat_missing_and_null_as_none(
    reader: Reader, good: JSONValue, wrong: JSONValue
) -> None:
    assert reader({}, "device") is None
    assert reader({"device": None}, "device") is None
    assert reader({"device": good}, "device") == good


@pytest.mark.parametrize(("reader", "good", "wrong"), OPTIONAL_READERS)
def test_optional_readers_still_refuse_a_wrong_type(
    reader: Reader, good: JSONValue, wrong: JSONValue
) -> None:
    with pytest.raises(PayloadError) as info:
        reader({"device": wrong}, "device")
    assert info.value.field == "device"


def test_optional_int_refuses_bool() -> None:
    with pytest.raises(PayloadError, match="field 'steps' must be an int, got bool"):
        optional_int({"steps": True}, "steps")


def test_optional_float_converts_int() -> None:
    value = optional_float({"lr": 1}, "lr")
    assert isinstance(value, float)
    assert value == 1.0


ALLOWED = ("user", "system")


def test_require_literal_returns_the_allowed_value() -> None:
    assert require_literal({"kind": "system"}, "kind", ALLOWED) == "system"


def test_require_literal_lists_the_allowed_values() -> None:
    with pytest.raises(PayloadError) as info:
        require_literal({"kind": "admin"}, "kind", ALLOWED)
    assert str(info.value) == "field 'kind' must be one of 'user', 'system', got 'admin'"
    assert info.value.field == "kind"


@pytest.mark.parametrize("obj", [{}, {"kind": None}, {"kind": 1}])
def test_require_literal_needs_a_string(obj: JSONObject) -> None:
    with pytest.raises(PayloadError) as info:
        require_literal(obj, "kind", ALLOWED)
    assert info.value.field == "kind"
