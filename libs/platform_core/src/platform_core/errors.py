"""One error type for every service, so the API renders all failures in one body shape."""

from typing import Generic, TypeVar

from typing_extensions import TypedDict

from platform_core.json_types import JSONObject

CodeT = TypeVar("CodeT", bound=str)


class ErrorInfo(TypedDict):
    """The inner part of an error body: what went wrong and the data to act on it."""

    code: str
    message: str
    details: JSONObject


class ErrorBody(TypedDict):
    """The one shape every HTTP error response has (also its OpenAPI schema: typing_extensions'
    TypedDict, which pydantic can read on Python 3.11)."""

    error: ErrorInfo


class AppError(Exception, Generic[CodeT]):
    """Carries a service's own error code and the HTTP status it maps to."""

    def __init__(
        self,
        code: CodeT,
        message: str,
        *,
        http_status: int,
        details: JSONObject | None = None,
    ) -> None:
        super().__init__(message)
        self.code: CodeT = code
        self.message = message
        self.http_status = http_status
        self.details: JSONObject = {} if details is None else details

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def to_body(self) -> ErrorBody:
        """Renders the error as the response body, copying details so callers cannot alias it."""
        return {
            "error": {"code": self.code, "message": self.message, "details": dict(self.details)}
        }
