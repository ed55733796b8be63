"""The OpenAPI document tells the truth: every request field and parameter is described with an
example, every route lists the coded refusals it answers with, every response has a schema,
operation ids are readable, and /docs works with no network."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from tests.support.openapi import arr, error_codes, obj, operation_for, operations, request_fields
from tests.unit.api.test_hostile import CASES

from model_trainer.api.openapi import MEANINGS
from model_trainer.backends.presets import CAPABILITIES
from model_trainer.errors import ERRORS
from platform_core.json_types import JSONObject

# Routes that need no key (the rest answer 401 UNAUTHENTICATED without one).
OPEN_ROUTES = {("GET", "/healthz"), ("GET", "/readyz")}
# Parsed JSON values that are only a recursive alias, not an object to describe.
ALIASES = {"JSONValue-Input", "JSONValue-Output"}
STATUS = {str(code): spec.status for code, spec in ERRORS.items()}
MEANING = {str(code): meaning for code, meaning in MEANINGS.items()}


@pytest.fixture
def document(client: TestClient) -> JSONObject:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return obj(response.json())


def has_example(schema: JSONObject) -> bool:
    return "example" in schema or "examples" in schema


def test_every_request_field_has_a_description_and_an_example(document: JSONObject) -> None:
    missing = []
    for method, path, operation in operations(document):
        body = operation.get("requestBody")
        if not isinstance(body, dict):
            continue
        for media in obj(body["content"]).values():
            for name, field in request_fields(document, obj(obj(media)["schema"]), "body"):
                if not field.get("description") or not has_example(field):
                    missing.append(f"{method} {path} {name}")
    assert missing == []


def test_every_parameter_has_a_description_and_an_example(document: JSONObject) -> None:
    missing = []
    for method, path, operation in operations(document):
        for parameter in map(obj, arr(operation.get("parameters", []))):
            schema = obj(parameter["schema"])
            if not parameter.get("description") or not (
                has_example(parameter) or has_example(schema)
            ):
                missing.append(f"{method} {path} {parameter['name']}")
    assert missing == []


def test_every_route_documents_its_coded_refusals_in_the_error_body(
    document: JSONObject,
) -> None:
    for method, path, operation in operations(document):
        responses = obj(operation["responses"])
        assert not {"4XX", "5XX", "default"} & set(responses), (method, path)
        codes = error_codes(operation)
        assert 500 in codes, (method, path)
        if (method, path) not in OPEN_ROUTES:
            assert codes[401] == {"UNAUTHENTICATED"}, (method, path)
            assert "INVALID_CONFIG" in codes[422], (method, path)
        for status, listed in codes.items():
            response = obj(responses[str(status)])
            schema = obj(obj(obj(response["content"])["application/json"])["schema"])
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)
            for code in listed:
                assert STATUS[code] == status, (method, path, code)
                assert f"`{code}`: {MEANING[code]}" in str(response["description"])


def test_the_refusals_the_hostile_table_provokes_are_documented(document: JSONObject) -> None:
    """Each (status, code) the hostile requests get is listed by the route that answered."""
    undocumented = []
    for name, case in CASES.items():
        operation = operation_for(document, case.method, case.path)
        if operation is None:  # no such route or method: ROUTE_NOT_FOUND, METHOD_NOT_ALLOWED
            assert case.code in ("ROUTE_NOT_FOUND", "METHOD_NOT_ALLOWED"), name
        elif case.code not in error_codes(operation).get(case.status, set()):
            undocumented.append(f"{name}: {case.status} {case.code}")
    assert undocumented == []


def test_every_response_has_a_typed_schema_and_every_schema_a_description(
    document: JSONObject,
) -> None:
    for method, path, operation in operations(document):
        for status, response in obj(operation["responses"]).items():
            for media_type, media in obj(obj(response).get("content", {})).items():
                schema = obj(obj(media).get("schema"))
                assert schema and schema != {"type": "object"}, (method, path, status, media_type)
    schemas = obj(obj(document["components"])["schemas"])
    assert [name for name, schema in schemas.items() if "description" not in obj(schema)] == [
        name for name in schemas if name in ALIASES
    ]


def test_a_runs_manifest_is_documented_as_one(document: JSONObject) -> None:
    run = obj(obj(document["paths"])["/v1/runs/{run_id}"])["get"]
    ok = obj(obj(obj(obj(run)["responses"])["200"])["content"])["application/json"]
    assert obj(ok)["schema"] == {"$ref": "#/components/schemas/RunManifest"}


def test_operation_ids_are_unique_and_camel_case(document: JSONObject) -> None:
    ids = [str(operation["operationId"]) for _, _, operation in operations(document)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[a-z]+(?:[A-Z][a-z]+)*", op_id) for op_id in ids), ids
    train = obj(obj(document["paths"])["/v1/jobs/train"])["post"]
    assert obj(train)["operationId"] == "submitTrainJob"


def test_model_family_and_size_are_enums_of_the_presets(document: JSONObject) -> None:
    schemas = obj(obj(document["components"])["schemas"])
    train = obj(obj(schemas["TrainJobRequest"])["properties"])
    sizes = {size for caps in CAPABILITIES.values() for size in caps["supported_sizes"]}
    assert obj(train["model_family"])["enum"] == list(CAPABILITIES)
    enum = obj(train["model_size"])["enum"]
    assert isinstance(enum, list)
    assert set(map(str, enum)) == sizes


class _Assets(HTMLParser):
    """Every URL a page loads: scripts, styles, icons and images."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value is not None:
                self.urls.append(value)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_load_only_assets_this_api_serves(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    parser = _Assets()
    parser.feed(response.text)
    assert len(parser.urls) >= 2, parser.urls
    for url in parser.urls:
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc) == ("", ""), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url
    assert "cdn" not in response.text.lower()
    assert "fonts.googleapis" not in response.text


def test_swagger_ui_asks_no_online_validator(client: TestClient) -> None:
    """Swagger UI would otherwise send the document's URL to validator.swagger.io."""
    assert '"validatorUrl": null' in client.get("/docs").text


def test_a_missing_docs_asset_and_a_wrong_method_answer_in_the_error_body(
    client: TestClient,
) -> None:
    missing = client.get("/static-offline-docs/nothing.js")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "ROUTE_NOT_FOUND")
    wrong = client.post("/docs")
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (405, "METHOD_NOT_ALLOWED")
