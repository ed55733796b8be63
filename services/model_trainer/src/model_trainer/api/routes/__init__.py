"""One small router per resource; each is built around the ApiContext that create_app makes."""

from __future__ import annotations

from platform_core.errors import ErrorBody

# Documents the one error body shape for every refused request (FastAPI's own 422 schema would
# describe a body this API never sends).
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    "4XX": {"model": ErrorBody, "description": "the request was refused"},
}
