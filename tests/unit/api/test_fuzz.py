"""Fuzzing the API from its own /openapi.json: no request gets a 5xx, every refusal is coded.

Schemathesis generates requests for every operation of the document the app serves (fetched
through the `client` fixture, so with its API key once keys exist) and every request goes through
that same client, with its Authorization header. Known-good values seeded here (a finished run,
a corpus file and an upload, a finished and a queued job) are mixed into the generated ones, and
each submit operation carries one valid example, so a share of the requests passes validation and
reaches the submit, read and cancel paths instead of bouncing off the first pydantic check.

Bounded for CI: a fixed seed with derandomized generation (the same ~1,030 requests on every
run) and MAX_EXAMPLES per operation; the module takes about 15 s on the 2-core CI machine (under
30 s with coverage on a busy one).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import fakeredis
import pytest
import schemathesis
from fastapi.testclient import TestClient
from rq import Queue, Worker
from rq.worker_registration import register
from schemathesis.checks import CheckContext, not_a_server_error
from schemathesis.core.transport import Response
from tests.conftest import SAMPLE_TEXT
from tests.support.openapi import error_codes, obj
from typing_extensions import TypedDict

from model_trainer.storage.job_store import JobStore
from model_trainer.storage.runs import RunManifest

if TYPE_CHECKING:
    from schemathesis.specs.openapi.schemas import OpenApiCase

FUZZ_SEED = 20261109
# Generated requests per operation in the fuzzing phase. The examples phase adds the one example
# of each submit operation and the coverage phase a fixed set of boundary cases per operation.
MAX_EXAMPLES = 30
# How often a known-good value replaces a generated one where the config binds it.
KNOWN_VALUE_SHARE = 0.5

# Mixed in beside the known values: what the hostile probes of issue 9 tried. (Schemathesis
# leaves out path parameters that would change the route, such as "a/b" or "..": those reach the
# body fields only.)
HOSTILE_PATHS = ["corpus.txt\x00", "../../../../etc/passwd", "/proc/self/environ", "/dev/zero", "."]
HOSTILE_IDS = ["..", "a/b", "r1\x00", "x" * 300]
# Valid-looking stream ids, two past what Redis can hold.
STREAM_IDS = ["0-0", "1700000000000-0", "18446744073709551616-0", "0-18446744073709551616"]

fuzz = schemathesis.pytest.from_fixture("api_schema")


class KnownValues(TypedDict):
    """Values that exist in the app under test, so generated requests can name them."""

    run_id: str
    corpus_path: str
    corpus_id: str
    finished_job_id: str
    queued_job_id: str


def submit_generate(client: TestClient, run_id: str) -> str:
    response = client.post("/v1/jobs/generate", json={"run_id": run_id, "prompt_text": "To"})
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    return job_id


@pytest.fixture
def worker(redis: fakeredis.FakeRedis) -> Worker:
    """A registered worker on both queues; the test heartbeats it before each request, as a
    live one does, so /readyz answers 200 as it does in service."""
    registered = Worker(
        [Queue(name, connection=redis) for name in ("train", "infer")], connection=redis
    )
    registered.heartbeat()
    register(registered)
    return registered


@pytest.fixture
def known(
    client: TestClient, redis: fakeredis.FakeRedis, corpus_path: Path, trained_run: RunManifest
) -> KnownValues:
    """Upload a corpus and submit two jobs through the API (so they belong to the client's user),
    then finish one of them, whose event stream therefore ends at once."""
    upload = client.post("/v1/corpora", content=SAMPLE_TEXT.encode("utf-8"))
    assert upload.status_code == 201, upload.text
    finished = submit_generate(client, trained_run["run_id"])
    JobStore(redis).complete(finished, result={"outputs": ["To be"]}, now="2026-01-01T00:00:01Z")
    return {
        "run_id": trained_run["run_id"],
        "corpus_path": corpus_path.name,
        "corpus_id": upload.json()["corpus_id"],
        "finished_job_id": finished,
        "queued_job_id": submit_generate(client, trained_run["run_id"]),
    }


def known_value_bindings(known: KnownValues) -> dict[str, object]:
    """Schemathesis dictionaries mixing the known values into generated fields and ids.

    An event stream follows a job until it ends, so GET /v1/jobs/{job_id}/events is only ever
    given the finished job (or a made-up id); the queued job is offered to DELETE alone. Values
    taken from earlier responses (new job ids) are off for the same reason.
    """

    def share(dictionary: str) -> dict[str, object]:
        return {"dictionary": dictionary, "probability": KNOWN_VALUE_SHARE}

    return {
        "dictionaries": {
            "families": {"values": ["char_lstm", "gpt2"]},
            "sizes": {"values": ["tiny"]},
            "run_ids": {"values": [known["run_id"], *HOSTILE_IDS]},
            "corpus_paths": {"values": [known["corpus_path"], *HOSTILE_PATHS]},
            "hostile_paths": {"values": HOSTILE_PATHS},
            "corpus_ids": {"values": [known["corpus_id"], *HOSTILE_IDS]},
            "finished_jobs": {"values": [known["finished_job_id"], *HOSTILE_IDS]},
            "any_jobs": {
                "values": [known["finished_job_id"], known["queued_job_id"], *HOSTILE_IDS]
            },
            "stream_ids": {"values": STREAM_IDS},
        },
        "parameters": {
            "body.model_family": share("families"),
            "body.model_size": share("sizes"),
            "body.run_id": share("run_ids"),
            "body.corpus_path": share("corpus_paths"),
            "body.corpus_id": share("corpus_ids"),
            "body.prompt_path": share("corpus_paths"),
            "body.path": share("corpus_paths"),
            "body.init_from": share("hostile_paths"),
            "path.run_id": share("run_ids"),
            "path.job_id": share("finished_jobs"),
            "header.Last-Event-ID": share("stream_ids"),
        },
        "operations": [
            {
                "include-name": "DELETE /v1/jobs/{job_id}",
                "parameters": {"path.job_id": share("any_jobs")},
            }
        ],
    }


def fuzz_config(known: KnownValues) -> schemathesis.Config:
    no_response_values = {"extra-data-sources": {"responses": False}}
    return schemathesis.Config.from_dict(
        {
            "seed": FUZZ_SEED,
            "generation": {
                "mode": "all",
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
                # The client's own key authenticates every call (see `send`).
                "with-security-parameters": False,
            },
            "phases": {
                "examples": no_response_values,
                "coverage": no_response_values,
                "fuzzing": no_response_values,
            },
            **known_value_bindings(known),
        }
    )


def valid_examples(known: KnownValues) -> dict[str, object]:
    """One request body per submit operation that the API accepts (the examples phase sends
    each as it is)."""
    corpus = {"corpus_path": known["corpus_path"]}
    run = {"run_id": known["run_id"]}
    return {
        "/v1/jobs/train": {"model_family": "char_lstm", "model_size": "tiny", **corpus},
        "/v1/jobs/eval": run,
        "/v1/jobs/score": {**run, "text": "To be, or not to be"},
        "/v1/jobs/generate": {**run, "prompt_text": "To be"},
        "/v1/jobs/tokenizer": {"kind": "char", "corpus_id": known["corpus_id"]},
    }


@pytest.fixture
def api_schema(client: TestClient, known: KnownValues) -> schemathesis.BaseSchema:
    """The app's /openapi.json, fetched with the client's key, plus one valid example for each
    submit operation."""
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    for path, example in valid_examples(known).items():
        document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["example"] = (
            example
        )
    return schemathesis.openapi.from_dict(document, config=fuzz_config(known))


def send(client: TestClient, case: OpenApiCase) -> Response:
    """The case as schemathesis serializes it, sent through the client with its key."""
    request = case.as_transport_kwargs(base_url=str(client.base_url))
    headers = dict(request["headers"])
    if "authorization" in client.headers:
        headers["Authorization"] = client.headers["authorization"]
    response = client.request(
        request["method"],
        request["url"],
        params=request.get("params"),
        headers=headers,
        json=request.get("json"),
        content=request.get("data"),
    )
    return Response.from_any(response)


def has_error_shape(body: object) -> bool:
    """`{"error": {"code": str, "message": str, "details": {...}}}` and nothing else."""
    if not isinstance(body, dict) or set(body) != {"error"}:
        return False
    error = body["error"]
    return (
        isinstance(error, dict)
        and set(error) == {"code", "message", "details"}
        and isinstance(error["code"], str)
        and isinstance(error["message"], str)
        and isinstance(error["details"], dict)
    )


def coded_client_error(ctx: CheckContext, response: Response, case: OpenApiCase) -> None:
    """Every 4xx has the one error shape, wrong methods and unknown paths included, and a code
    the operation documents for that status."""
    if 400 <= response.status_code < 500:
        body = response.json()
        assert has_error_shape(body), response.text
        code = body["error"]["code"]
        if code not in ("ROUTE_NOT_FOUND", "METHOD_NOT_ALLOWED"):
            documented = error_codes(obj(case.operation.definition.raw))
            assert code in documented.get(response.status_code, set()), response.text


@fuzz.parametrize()
def test_no_request_gets_a_server_error(
    case: OpenApiCase, client: TestClient, worker: Worker
) -> None:
    worker.heartbeat()
    response = send(client, case)
    case.validate_response(response, checks=[not_a_server_error, coded_client_error])


def test_the_seeded_values_and_examples_are_accepted(
    client: TestClient, known: KnownValues
) -> None:
    """The fuzz reaches past validation only while these hold."""
    for path, body in valid_examples(known).items():
        response = client.post(path, json=body)
        assert response.status_code == 202, (path, response.text)
    assert client.get(f"/v1/runs/{known['run_id']}").status_code == 200
    assert client.get(f"/v1/jobs/{known['queued_job_id']}").json()["status"] == "queued"
    events = client.get(f"/v1/jobs/{known['finished_job_id']}/events")
    assert (events.status_code, events.text) == (200, "")
