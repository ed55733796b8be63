"""Reading the app's OpenAPI document in tests: the operations, their parameters and request
fields, and the error codes each documents per status."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

from platform_core.json_types import JSONObject, JSONValue

METHODS = ("get", "put", "post", "delete", "patch")


def obj(value: JSONValue | None) -> JSONObject:
    assert isinstance(value, dict), value
    return value


def arr(value: JSONValue | None) -> list[JSONValue]:
    assert isinstance(value, list), value
    return value


def operations(document: JSONObject) -> Iterator[tuple[str, str, JSONObject]]:
    """(METHOD, path template, operation) for every operation."""
    for path, item in obj(document["paths"]).items():
        for method, operation in obj(item).items():
            if method in METHODS:
                yield method.upper(), path, obj(operation)


def resolve(document: JSONObject, schema: JSONObject) -> JSONObject:
    ref = schema.get("$ref")
    if not isinstance(ref, str):
        return schema
    return obj(obj(obj(document["components"])["schemas"])[ref.rsplit("/", 1)[1]])


def request_fields(
    document: JSONObject, schema: JSONObject, where: str, seen: set[str] | None = None
) -> Iterator[tuple[str, JSONObject]]:
    """(dotted name, schema) of every property a request body may carry, nested ones too."""
    seen = set() if seen is None else seen
    ref = schema.get("$ref")
    if isinstance(ref, str):
        if ref in seen:
            return
        seen.add(ref)
    schema = resolve(document, schema)
    for name, prop in obj(schema.get("properties", {})).items():
        yield f"{where}.{name}", obj(prop)
        yield from request_fields(document, obj(prop), f"{where}.{name}", seen)
    for key in ("anyOf", "oneOf", "allOf"):
        for part in arr(schema.get(key, [])):
            yield from request_fields(document, obj(part), where, seen)
    items = schema.get("items")
    if isinstance(items, dict):
        yield from request_fields(document, items, f"{where}[]", seen)


def error_codes(operation: JSONObject) -> dict[int, set[str]]:
    """The codes an operation documents for each error status (the examples' keys)."""
    codes: dict[int, set[str]] = {}
    for status, response in obj(operation["responses"]).items():
        content = obj(obj(response).get("content", {})).get("application/json")
        if int(status) >= 400 and isinstance(content, dict) and "examples" in content:
            codes[int(status)] = set(obj(content["examples"]))
    return codes


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$")


def operation_for(document: JSONObject, method: str, url: str) -> JSONObject | None:
    """The operation that serves `method url` (literal paths win over templates, as routes
    are matched), or None when no route has that path and method."""
    path = unquote(urlsplit(url).path)
    matching = [
        (template, operation)
        for verb, template, operation in operations(document)
        if verb == method and _pattern(template).match(path)
    ]
    matching.sort(key=lambda pair: pair[0].count("{"))
    return matching[0][1] if matching else None
