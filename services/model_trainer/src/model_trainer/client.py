"""A small typed HTTP client for the API, used by the CLI, `make run` and the e2e tests."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypedDict

import httpx

from model_trainer.contracts.export import BUNDLE_SHA256_HEADER
from model_trainer.contracts.jobs import TERMINAL_STATUSES
from model_trainer.contracts.limits import DEFAULT_LOG_TAIL
from platform_core.job_events import TERMINAL_JOB_EVENT_TYPES
from platform_core.job_logs import JobLogLine, log_lines_from_object
from platform_core.json_types import (
    JSONObject,
    JSONValue,
    PayloadError,
    dump_json_object,
    load_json_object,
)

# The API sends a keepalive comment every 15 s: a longer silence means a dead connection.
STREAM_READ_TIMEOUT_S = 60.0
# How much of an unexpected error body an ApiError quotes.
QUOTED_BODY = 200


class ServerEvent(TypedDict):
    id: str
    event: str
    data: str


class Reconnect(TypedDict):
    """How a follower resumes a stream that ended before the job did (seconds)."""

    first_delay_s: float
    max_delay_s: float
    give_up_after_s: float  # without receiving an event


RECONNECT: Reconnect = {"first_delay_s": 0.2, "max_delay_s": 5.0, "give_up_after_s": 120.0}


class ApiError(Exception):
    """A non-2xx answer, with the API's coded error body (or whatever else answered: a proxy's
    page says its status and its first words)."""

    def __init__(self, status: int, body: JSONObject) -> None:
        error = body.get("error")
        code = error.get("code") if isinstance(error, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        self.status = status
        self.body = body
        self.code = code if isinstance(code, str) else ""
        said = message if isinstance(message, str) else dump_json_object(body)[:QUOTED_BODY]
        super().__init__(
            f"HTTP {status} {self.code}: {said}" if self.code else f"HTTP {status}: {said}"
        )

    @classmethod
    def of(cls, response: httpx.Response) -> ApiError:
        """The refusal a response carries, whether its body is our error body or not."""
        try:
            body = load_json_object(response.content)
        except PayloadError:
            said = " ".join(response.text[:QUOTED_BODY].split()) or response.reason_phrase
            body = {"error": {"code": "", "message": said}}
        return cls(response.status_code, body)


class _Backoff:
    """Doubling pauses between attempts, given up once too long passed without progress."""

    def __init__(
        self, policy: Reconnect, clock: Callable[[], float], sleep: Callable[[float], None]
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._sleep = sleep
        self.progressed()

    def progressed(self) -> None:
        self._since = self._clock()
        self._delay = self._policy["first_delay_s"]

    def pause(self, error: Exception) -> None:
        """Sleeps before the next attempt, or raises `error` once the budget is spent."""
        if self._clock() + self._delay - self._since > self._policy["give_up_after_s"]:
            raise error
        self._sleep(self._delay)
        self._delay = min(self._delay * 2, self._policy["max_delay_s"])


class StreamEnded(Exception):
    """The API ended a job's event stream before its terminal event."""


class BundleMismatch(Exception):
    """A downloaded bundle's bytes differ from the sha256 the API announced for it."""


# Where the CLI and TrainerClient find the API key when none is passed.
API_KEY_ENV = "MODEL_TRAINER_API_KEY"


class TrainerClient:
    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        reconnect: Reconnect = RECONNECT,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        key = os.environ.get(API_KEY_ENV) if api_key is None else api_key
        headers = {} if key is None else {"Authorization": f"Bearer {key}"}
        self._http = httpx.Client(
            base_url=base_url, timeout=timeout, transport=transport, headers=headers
        )
        self._stream_timeout = httpx.Timeout(timeout, read=STREAM_READ_TIMEOUT_S)
        self._reconnect = reconnect
        self._clock = clock
        self._sleep = sleep

    def close(self) -> None:
        self._http.close()

    def _json(self, response: httpx.Response) -> JSONObject:
        if response.is_error:
            raise ApiError.of(response)
        return load_json_object(response.content)

    def upload_corpus(self, text: bytes) -> JSONObject:
        headers = {"content-type": "text/plain; charset=utf-8"}
        return self._json(self._http.post("/v1/corpora", content=text, headers=headers))

    def submit(self, job_type: str, body: dict[str, JSONValue]) -> JSONObject:
        return self._json(self._http.post(f"/v1/jobs/{job_type}", json=body))

    def job(self, job_id: str) -> JSONObject:
        return self._json(self._http.get(f"/v1/jobs/{job_id}"))

    def jobs(self, **filters: str | int) -> JSONObject:
        return self._json(self._http.get("/v1/jobs", params=filters))

    def job_logs(self, job_id: str, tail: int = DEFAULT_LOG_TAIL) -> list[JobLogLine]:
        """The job's newest `tail` log lines from its worker, oldest first, each validated."""
        body = self._json(self._http.get(f"/v1/jobs/{job_id}/logs", params={"tail": tail}))
        return log_lines_from_object(body)

    def cancel(self, job_id: str) -> JSONObject:
        return self._json(self._http.delete(f"/v1/jobs/{job_id}"))

    def runs(self, **query: str | int | float) -> JSONObject:
        """Finished runs; `sort`, `order`, `metric`, `min`, `max`, `model_family`, `limit`."""
        return self._json(self._http.get("/v1/runs", params=query))

    def run(self, run_id: str) -> JSONObject:
        """A finished run's manifest."""
        return self._json(self._http.get(f"/v1/runs/{run_id}"))

    def run_metrics(self, run_id: str, **query: int) -> JSONObject:
        """A run's metrics history: `offset`/`limit` pages, or `points` to down-sample."""
        return self._json(self._http.get(f"/v1/runs/{run_id}/metrics", params=query))

    def run_checkpoints(self, run_id: str) -> JSONObject:
        return self._json(self._http.get(f"/v1/runs/{run_id}/checkpoints"))

    def compare_runs(self, run_ids: list[str]) -> JSONObject:
        params = {"ids": ",".join(run_ids)}
        return self._json(self._http.get("/v1/runs/compare", params=params))

    def create_study(self, body: dict[str, JSONValue]) -> JSONObject:
        """A hyperparameter study (`POST /v1/studies`); its trials are train jobs."""
        return self._json(self._http.post("/v1/studies", json=body))

    def studies(self) -> JSONObject:
        return self._json(self._http.get("/v1/studies"))

    def study(self, study_id: str) -> JSONObject:
        return self._json(self._http.get(f"/v1/studies/{study_id}"))

    def study_trials(self, study_id: str) -> JSONObject:
        return self._json(self._http.get(f"/v1/studies/{study_id}/trials"))

    def cancel_study(self, study_id: str) -> JSONObject:
        return self._json(self._http.delete(f"/v1/studies/{study_id}"))

    def create_model(self, name: str, description: str = "") -> JSONObject:
        body = {"name": name, "description": description}
        return self._json(self._http.post("/v1/models", json=body))

    def models(self) -> JSONObject:
        return self._json(self._http.get("/v1/models"))

    def model(self, name: str) -> JSONObject:
        return self._json(self._http.get(f"/v1/models/{name}"))

    def register_version(self, name: str, run_id: str, step: int | None = None) -> JSONObject:
        body: dict[str, JSONValue] = {"run_id": run_id, "step": step}
        return self._json(self._http.post(f"/v1/models/{name}/versions", json=body))

    def versions(self, name: str, *, after: int = 0, limit: int = 50) -> JSONObject:
        params = {"after": after, "limit": limit}
        return self._json(self._http.get(f"/v1/models/{name}/versions", params=params))

    def promote(self, name: str, alias: str, version: int, *, force: bool = False) -> JSONObject:
        body = {"version": version, "force": force}
        return self._json(self._http.put(f"/v1/models/{name}/aliases/{alias}", json=body))

    def rollback(self, name: str, alias: str) -> JSONObject:
        return self._json(self._http.post(f"/v1/models/{name}/aliases/{alias}/rollback"))

    def compare(self, name: str, versions: list[int]) -> JSONObject:
        params = {"versions": ",".join(str(version) for version in versions)}
        return self._json(self._http.get(f"/v1/models/{name}/compare", params=params))

    def events(self, job_id: str, *, last_event_id: str | None = None) -> Iterator[ServerEvent]:
        """The job's Server-Sent Events, replayed then live, until its terminal event.

        A stream that ends early (the API restarted or shut down, Redis blinked, the network
        dropped) is resumed after the last event received, with `Last-Event-ID`, so nothing is
        repeated or lost. A stream that ends because the job ended without a terminal event
        (its stream expired) is read once more, then left.
        """
        backoff = _Backoff(self._reconnect, self._clock, self._sleep)
        job_over = False
        while True:
            try:
                for event in self._event_stream(job_id, last_event_id):
                    backoff.progressed()
                    last_event_id = event["id"] or last_event_id
                    yield event
                    if event["event"] in TERMINAL_JOB_EVENT_TYPES:
                        return
                if job_over:
                    return
                job_over = self._job_over(job_id)
                if job_over:
                    continue
                backoff.pause(StreamEnded(f"the event stream of job {job_id} kept ending"))
            except (httpx.TransportError, ApiError) as error:
                if isinstance(error, ApiError) and error.status < 500:
                    raise
                backoff.pause(error)

    def _event_stream(self, job_id: str, last_event_id: str | None) -> Iterator[ServerEvent]:
        """One response's events."""
        headers = {} if last_event_id is None else {"last-event-id": last_event_id}
        url = f"/v1/jobs/{job_id}/events"
        with self._http.stream(
            "GET", url, headers=headers, timeout=self._stream_timeout
        ) as response:
            if response.is_error:
                response.read()
                raise ApiError.of(response)
            yield from parse_sse(response.iter_lines())

    def wait(self, job_id: str) -> JSONObject:
        """Read the job's events to its terminal one, then return its record."""
        for _ in self.events(job_id):
            pass
        return self.job(job_id)

    def download_bundle(self, job_id: str, out: Path) -> str:
        """Stream an export job's bundle to `out` (whole or not at all) and return its sha256,
        refused (BundleMismatch) when it differs from the digest the API sent with it."""
        partial = out.with_name(f".{out.name}.partial")
        digest = hashlib.sha256()
        try:
            with self._http.stream(
                "GET", f"/v1/jobs/{job_id}/bundle", timeout=self._stream_timeout
            ) as response:
                if response.is_error:
                    response.read()
                    raise ApiError.of(response)
                expected = response.headers.get(BUNDLE_SHA256_HEADER)
                with partial.open("wb") as handle:
                    for chunk in response.iter_bytes():
                        digest.update(chunk)
                        handle.write(chunk)
            if expected is not None and expected != digest.hexdigest():
                raise BundleMismatch(f"bundle of job {job_id} does not match its sha256")
            partial.replace(out)
        finally:
            partial.unlink(missing_ok=True)
        return digest.hexdigest()

    def _job_over(self, job_id: str) -> bool:
        return self.job(job_id).get("status") in TERMINAL_STATUSES

    # Schedules (`/v1/schedules`).
    def create_schedule(
        self,
        job_type: str,
        request: dict[str, JSONValue],
        *,
        cron: str | None = None,
        interval_s: int | None = None,
        name: str | None = None,
    ) -> JSONObject:
        """Submit `request` as a `job_type` job on `cron` or every `interval_s` seconds."""
        body: dict[str, JSONValue] = {
            "job_type": job_type,
            "request": request,
            "cron": cron,
            "interval_s": interval_s,
            "name": name,
        }
        return self._json(self._http.post("/v1/schedules", json=body))

    def schedules(self) -> JSONObject:
        return self._json(self._http.get("/v1/schedules"))

    def schedule(self, schedule_id: str) -> JSONObject:
        """The schedule with its newest firings (job ids, or refusals)."""
        return self._json(self._http.get(f"/v1/schedules/{schedule_id}"))

    def pause_schedule(self, schedule_id: str) -> JSONObject:
        return self._json(self._http.post(f"/v1/schedules/{schedule_id}/pause"))

    def resume_schedule(self, schedule_id: str) -> JSONObject:
        return self._json(self._http.post(f"/v1/schedules/{schedule_id}/resume"))

    def delete_schedule(self, schedule_id: str) -> JSONObject:
        return self._json(self._http.delete(f"/v1/schedules/{schedule_id}"))


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
