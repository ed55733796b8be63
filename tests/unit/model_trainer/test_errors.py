"""ModelTrainerError: every code has one HTTP status and one kind, taken from the one table."""

from typing import get_args

import pytest

from model_trainer.contracts.jobs import ERROR_KINDS, ErrorKind
from model_trainer.errors import ERRORS, ModelTrainerError, ModelTrainerErrorCode
from platform_core.errors import AppError

ALL_CODES: tuple[ModelTrainerErrorCode, ...] = get_args(ModelTrainerErrorCode)


def test_table_covers_exactly_the_declared_codes() -> None:
    assert set(ERRORS) == set(ALL_CODES)
    assert len(ALL_CODES) == len(set(ALL_CODES))


def test_every_status_is_a_client_or_server_error() -> None:
    assert all(400 <= spec.status <= 599 for spec in ERRORS.values())


def test_every_code_has_a_known_kind() -> None:
    assert {spec.kind for spec in ERRORS.values()} == set(ERROR_KINDS)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("INVALID_CONFIG", 422),
        ("MODEL_NOT_FOUND", 404),
        ("MODEL_EXISTS", 409),
        ("PROMOTION_REFUSED", 409),
        ("ALIAS_NO_HISTORY", 409),
        ("CORPUS_TOO_LARGE", 413),
        ("PATH_OUTSIDE_ROOT", 400),
        ("TRAINING_NAN_LOSS", 500),
        ("CUDA_NOT_AVAILABLE", 503),
        ("NO_CUDA_WORKER", 503),
    ],
)
def test_documented_statuses(code: ModelTrainerErrorCode, status: int) -> None:
    assert ERRORS[code].status == status


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("TRAINING_CANCELLED", "user"),
        ("CORPUS_NOT_FOUND", "user"),
        ("CORPUS_EMPTY", "user"),
        ("CORPUS_TOO_LARGE", "user"),
        ("TRAINING_OOM", "resource"),
        ("CUDA_OOM", "resource"),
        ("INTERNAL_ERROR", "system"),
        ("TRAINING_NAN_LOSS", "user"),
    ],
)
def test_documented_kinds(code: ModelTrainerErrorCode, kind: ErrorKind) -> None:
    assert ERRORS[code].kind == kind


@pytest.mark.parametrize("code", ALL_CODES)
def test_error_takes_its_status_and_kind_from_the_table(code: ModelTrainerErrorCode) -> None:
    error = ModelTrainerError(code, "something went wrong")
    assert error.code == code
    assert error.http_status == ERRORS[code].status
    assert error.kind == ERRORS[code].kind
    assert error.message == "something went wrong"
    assert error.details == {}
    assert str(error) == f"{code}: something went wrong"


def test_details_are_kept_and_rendered_in_the_body() -> None:
    error = ModelTrainerError(
        "INVALID_CONFIG", "batch_size must be >= 1, got 0", details={"field": "batch_size"}
    )
    assert error.details == {"field": "batch_size"}
    assert error.to_body() == {
        "error": {
            "code": "INVALID_CONFIG",
            "message": "batch_size must be >= 1, got 0",
            "details": {"field": "batch_size"},
        }
    }


def test_is_an_app_error() -> None:
    with pytest.raises(AppError) as info:
        raise ModelTrainerError("CORPUS_EMPTY", "corpus c1 is empty")
    assert info.value.http_status == 400
