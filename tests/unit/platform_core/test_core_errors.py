"""AppError carries a typed code and renders the one error body shape."""

from typing import Literal

import orjson
import pytest

from platform_core.errors import AppError, ErrorBody

DemoCode = Literal["CORPUS_EMPTY", "MODEL_NOT_FOUND"]


class DemoError(AppError[DemoCode]):
    """A service-style subclass, as a service would declare its own."""


def test_attributes_keep_what_was_given() -> None:
    error = DemoError("CORPUS_EMPTY", "corpus c1 has no text", http_status=400, details={"id": 1})
    assert error.code == "CORPUS_EMPTY"
    assert error.message == "corpus c1 has no text"
    assert error.http_status == 400
    assert error.details == {"id": 1}


def test_str_shows_code_then_message() -> None:
    error = DemoError("MODEL_NOT_FOUND", "run r1 does not exist", http_status=404)
    assert str(error) == "MODEL_NOT_FOUND: run r1 does not exist"


def test_details_default_to_an_empty_object_not_shared_between_errors() -> None:
    first = DemoError("CORPUS_EMPTY", "a", http_status=400)
    second = DemoError("CORPUS_EMPTY", "b", http_status=400)
    first.details["k"] = 1
    assert second.details == {}


def test_to_body_has_exactly_the_documented_shape() -> None:
    error = DemoError(
        "MODEL_NOT_FOUND", "run r1 does not exist", http_status=404, details={"run_id": "r1"}
    )
    expected: ErrorBody = {
        "error": {
            "code": "MODEL_NOT_FOUND",
            "message": "run r1 does not exist",
            "details": {"run_id": "r1"},
        }
    }
    assert error.to_body() == expected
    assert orjson.loads(orjson.dumps(error.to_body())) == expected


def test_to_body_details_do_not_alias_the_error() -> None:
    error = DemoError("CORPUS_EMPTY", "m", http_status=400, details={"a": 1})
    error.to_body()["error"]["details"]["a"] = 2
    assert error.details == {"a": 1}


def test_raised_error_is_catchable_as_app_error() -> None:
    with pytest.raises(AppError) as info:
        raise DemoError("CORPUS_EMPTY", "empty", http_status=400)
    assert info.value.http_status == 400
