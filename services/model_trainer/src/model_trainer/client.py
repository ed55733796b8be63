"""A small typed HTTP client for the API, used by the CLI, `make run` and the e2e tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypedDict

import httpx

from platform_core.json_types import JSONObject, JSONValue, load_json_object


class ServerEvent(TypedDict):
    id: str
    event: str
    data: str


class ApiError(Exception):
    """A non-2xx answer, with the API's coded error body."""

    def __init__(self, status: int, body: JSONObject) -> None:
        error = body.get("error")
        code = error.get("code") if isinstance(error, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status = status
        self.body = body
        self.code = code if isinstance(code, str) else ""


class TrainerClient:
    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def _json(self, response: httpx.Response) -> JSONObject:
        body = load_json_object(response.content)
        if response.is_error:
            raise ApiError(response.status_code, body)
        return body

    def upload_corpus(self, text: bytes) -> JSONObject:
        headers = {"content-type": "text/plain; charset=utf-8"}
        return self._json(self._http.post("/v1/corpora", content=text, headers=headers))

    def submit(self, job_type: str, body: dict[str, JSONValue]) -> JSONObject:
        return self._json(self._http.post(f"/v1/jobs/{job_type}", json=body))

    def job(self, job_id: str) -> JSONObject:
        return self._json(self._http.get(f"/v1/jobs/{job_id}"))

    def jobs(self, **filters: str | int) -> JSONObject:
        return self._json(self._http.get("/v1/jobs", params=filters))

    def cancel(self, job_id: str) -> JSONObject:
        return self._json(self._http.delete(f"/v1/jobs/{job_id}"))

    def events(self, job_id: str, *, last_event_id: str | None = None) -> Iterator[ServerEvent]:
        """The job's Server-Sent Events, replayed then live, until the stream ends."""
        headers = {} if last_event_id is None else {"last-event-id": last_event_id}
        url = f"/v1/jobs/{job_id}/events"
        with self._http.stream("GET", url, headers=headers, timeout=None) as response:
            if response.is_error:
                response.read()
                raise ApiError(response.status_code, load_json_object(response.content))
            yield from parse_sse(response.iter_lines())


def parse_sse(lines: Iterator[str]) -> Iterator[ServerEvent]:
    """Fold `id:`/`event:`/`data:` lines into events; comments (keepalives) are skipped."""
    fields: dict[str, str] = {}
    for line in lines:
        if not line:
            if "data" in fields:
                yield {
                    "id": fields.get("id", ""),
                    "event": fields.get("event", "message"),
                    "data": fields["data"],
                }
            fields = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        fields[name] = value.removeprefix(" ")
