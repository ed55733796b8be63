"""Strict JSON decoding, so a half-typed dict read from Redis or the wire never flows on."""

import math
from collections.abc import Mapping
from typing import TypeAlias, TypeVar

import orjson
from typing_extensions import TypeAliasType

JSONScalar: TypeAlias = str | int | float | bool | None
# A named recursive alias (TypeAliasType, PEP 695's backport), so pydantic can describe a JSON
# value in the OpenAPI document where a TypedDict carrying one is a response model.
JSONValue = TypeAliasType("JSONValue", "JSONScalar | list[JSONValue] | dict[str, JSONValue]")
JSONObject: TypeAlias = dict[str, JSONValue]

LiteralT = TypeVar("LiteralT", bound=str)

ROOT_FIELD = "$"


class PayloadError(ValueError):
    """Names the offending field, so a producer knows exactly what to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _kind(value: object) -> str:
    """Names a JSON value's type the way error messages show it."""
    return "null" if value is None else type(value).__name__


def _wrong_type(field: str, expected: str, value: object) -> PayloadError:
    """Builds the one message shape every reader uses for a mistyped field."""
    return PayloadError(field, f"field '{field}' must be {expected}, got {_kind(value)}")


def load_json_object(payload: str | bytes) -> JSONObject:
    """Parses a message once at the edge and insists on an object at its root."""
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(ROOT_FIELD, f"payload is not valid JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise _wrong_type(ROOT_FIELD, "a JSON object", parsed)
    return parsed


def _check_finite(field: str, value: object) -> None:
    """Rejects NaN and infinities, which JSON cannot carry (orjson would write null)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise PayloadError(field, f"field '{field}' must be a finite number, got {value}")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(f"{field}.{key}", item)
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_finite(f"{field}[{index}]", item)


def dump_json_object(obj: Mapping[str, object]) -> str:
    """Encodes an event so that decoding it gives back exactly the same dict."""
    for field, value in obj.items():
        _check_finite(field, value)
    return orjson.dumps(obj).decode("utf-8")


def _require(obj: JSONObject, field: str) -> JSONValue:
    """Distinguishes a missing field from a mistyped one in the error message."""
    if field not in obj:
        raise PayloadError(field, f"field '{field}' is required")
    return obj[field]


def require_str(obj: JSONObject, field: str) -> str:
    """Reads a field that must be a string."""
    value = _require(obj, field)
    if not isinstance(value, str):
        raise _wrong_type(field, "a str", value)
    return value


def require_int(obj: JSONObject, field: str) -> int:
    """Reads an int field; a bool is refused even though Python calls it an int."""
    value = _require(obj, field)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type(field, "an int", value)
    return value


def require_float(obj: JSONObject, field: str) -> float:
    """Reads a float field; JSON writers may drop '.0', so an int is accepted too."""
    value = _require(obj, field)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _wrong_type(field, "a float", value)
    return float(value)


def require_bool(obj: JSONObject, field: str) -> bool:
    """Reads a field that must be true or false."""
    value = _require(obj, field)
    if not isinstance(value, bool):
        raise _wrong_type(field, "a bool", value)
    return value


def require_object(obj: JSONObject, field: str) -> JSONObject:
    """Reads a field that must be a nested JSON object."""
    value = _require(obj, field)
    if not isinstance(value, dict):
        raise _wrong_type(field, "an object", value)
    return value


def require_literal(obj: JSONObject, field: str, allowed: tuple[LiteralT, ...]) -> LiteralT:
    """Reads a string field restricted to a closed set, returning the set's own type."""
    value = require_str(obj, field)
    for option in allowed:
        if option == value:
            return option
    expected = ", ".join(repr(option) for option in allowed)
    raise PayloadError(field, f"field '{field}' must be one of {expected}, got {value!r}")


def _is_absent(obj: JSONObject, field: str) -> bool:
    """Treats a null the same as a missing key for optional fields."""
    return obj.get(field) is None


def optional_str(obj: JSONObject, field: str) -> str | None:
    """Reads a string field that may be missing or null."""
    return None if _is_absent(obj, field) else require_str(obj, field)


def optional_int(obj: JSONObject, field: str) -> int | None:
    """Reads an int field that may be missing or null."""
    return None if _is_absent(obj, field) else require_int(obj, field)


def optional_float(obj: JSONObject, field: str) -> float | None:
    """Reads a float field that may be missing or null."""
    return None if _is_absent(obj, field) else require_float(obj, field)


def optional_object(obj: JSONObject, field: str) -> JSONObject | None:
    """Reads a nested object field that may be missing or null."""
    return None if _is_absent(obj, field) else require_object(obj, field)
