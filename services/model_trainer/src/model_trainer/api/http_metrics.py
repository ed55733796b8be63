"""This API process's requests as Prometheus metrics: counts and latency by route and status.

The route label is the route's template (`/v1/jobs/{job_id}`), never the raw path, so requests
for random paths add no series (they are `unmatched`). Each process counts its own requests;
several processes behind one port (`uvicorn --workers N`) share prometheus-client's
multiprocess files when PROMETHEUS_MULTIPROC_DIR is set (see `api.metrics`).
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "unmatched"
_LABELS = ("method", "route", "status")

REQUESTS = Counter("model_trainer_http_requests", "HTTP requests answered", _LABELS)
LATENCY = Histogram(
    "model_trainer_http_request_duration_seconds",
    "Time from a request's arrival to its response's last byte",
    _LABELS,
)


def route_template(scope: Scope) -> str:
    """The template of the route that served the request (set by the router as it matched)."""
    route = scope.get("route")
    return route.path if isinstance(route, Route) else UNMATCHED


class RequestMetrics:
    """ASGI middleware, outermost, so even a refused body or a crash is counted (a crash as
    500: the exception passes through here on its way to the server error handler)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            labels = (scope["method"], route_template(scope), str(status))
            REQUESTS.labels(*labels).inc()
            LATENCY.labels(*labels).observe(time.perf_counter() - began)
