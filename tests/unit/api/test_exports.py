"""Export jobs over HTTP: submitting one for the caller's run, downloading the caller's bundle."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import fakeredis
import pytest
from fastapi.testclient import TestClient
from rq.job import Job
from rq.serializers import JSONSerializer
from tests.support.records import queued_record
from tests.unit.api.conftest import bearer

from model_trainer.contracts.jobs import WORKER_FUNCTIONS, JobError, JobType
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.api_keys import create_key
from model_trainer.storage.artifacts import fetch, stored
from model_trainer.storage.exports import bundle_path, store_bundle
from model_trainer.storage.job_store import JobStore
from model_trainer.storage.runs import utc_now
from platform_core.json_types import JSONObject, load_json_object, require_object, require_str

BUNDLE = b"\x1f\x8b pretend gzip bytes" * 100
JOB_ID = "e" * 32


def export_result(data: bytes = BUNDLE) -> JSONObject:
    return {
        "run_id": "r1",
        "bundle_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "files": ["README.md", "SHA256SUMS"],
    }


def write_bundle(out: Path) -> None:
    out.write_bytes(BUNDLE)


def finish(
    redis: fakeredis.FakeRedis,
    settings: Settings,
    job_type: JobType = "export",
    *,
    result: JSONObject | None = None,
    write: bool = True,
) -> str:
    """A completed job of user 1 (alice), with its bundle on disk unless `write` is false."""
    jobs = JobStore(redis)
    jobs.create(queued_record(JOB_ID, job_type, "r1"))
    if write:
        store_bundle(settings, JOB_ID, write_bundle)
    jobs.complete(JOB_ID, result=export_result() if result is None else result, now=utc_now())
    return JOB_ID


class Answer(Protocol):
    @property
    def status_code(self) -> int: ...

    @property
    def content(self) -> bytes: ...


def error_of(response: Answer) -> tuple[int, str]:
    error = require_object(load_json_object(response.content), "error")
    return response.status_code, require_str(error, "code")


@pytest.mark.usefixtures("trained_run")
def test_an_export_of_the_callers_run_is_recorded_and_enqueued_on_the_train_queue(
    client: TestClient, redis: fakeredis.FakeRedis
) -> None:
    response = client.post("/v1/jobs/export", json={"run_id": "r1", "timeout_s": 120})
    assert response.status_code == 202, response.text
    body = response.json()
    job_id = body["job_id"]
    assert body == {
        "job_id": job_id,
        "type": "export",
        "status": "queued",
        "queue": "train",
        "run_id": "r1",
    }
    job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
    assert job.func_name == WORKER_FUNCTIONS["export"]
    assert list(job.args) == [
        {"job_id": job_id, "user_id": 1, "run_id": "r1", "step": None, "config": {"onnx_opset": 18}}
    ]
    assert job.timeout == 120
    record = JobStore(redis).get(job_id)
    assert record is not None
    assert (record["type"], record["queue"], record["status"]) == ("export", "train", "queued")


@pytest.mark.usefixtures("trained_run")
def test_another_users_run_cannot_be_exported(
    client: TestClient, redis: fakeredis.FakeRedis, assert_no_trace: Callable[[], None]
) -> None:
    bob = create_key(redis, "bob")
    response = client.post("/v1/jobs/export", json={"run_id": "r1"}, headers=bearer(bob))
    assert error_of(response) == (404, "MODEL_NOT_FOUND")
    assert response.json()["error"]["details"] == {"field": "run_id", "run_id": "r1"}
    assert_no_trace()


def test_the_owner_downloads_a_completed_bundle_with_its_digest(
    client: TestClient, redis: fakeredis.FakeRedis, settings: Settings
) -> None:
    job_id = finish(redis, settings)
    response = client.get(f"/v1/jobs/{job_id}/bundle")
    assert response.status_code == 200, response.text
    assert response.content == BUNDLE
    assert response.headers["content-type"] == "application/gzip"
    disposition = response.headers["content-disposition"]
    assert disposition == f'attachment; filename="r1-{job_id}.tar.gz"'
    assert response.headers["x-bundle-sha256"] == hashlib.sha256(BUNDLE).hexdigest()


def test_another_users_bundle_is_not_found_but_an_admin_gets_it(
    client: TestClient, redis: fakeredis.FakeRedis, settings: Settings
) -> None:
    job_id = finish(redis, settings)
    bob = client.get(f"/v1/jobs/{job_id}/bundle", headers=bearer(create_key(redis, "bob")))
    assert error_of(bob) == (404, "JOB_NOT_FOUND")
    admin = create_key(redis, "root", admin=True)
    assert client.get(f"/v1/jobs/{job_id}/bundle", headers=bearer(admin)).content == BUNDLE


def test_a_job_of_another_type_has_no_bundle(
    client: TestClient, redis: fakeredis.FakeRedis, settings: Settings
) -> None:
    job_id = finish(redis, settings, "generate", write=False, result={"outputs": ["x"]})
    assert error_of(client.get(f"/v1/jobs/{job_id}/bundle")) == (404, "JOB_NOT_FOUND")


def test_an_export_not_completed_has_no_bundle_yet(
    client: TestClient, redis: fakeredis.FakeRedis
) -> None:
    jobs = JobStore(redis)
    jobs.create(queued_record(JOB_ID, "export", "r1"))
    queued = client.get(f"/v1/jobs/{JOB_ID}/bundle")
    assert error_of(queued) == (409, "JOB_NOT_COMPLETED")
    assert queued.json()["error"]["details"] == {"job_id": JOB_ID, "status": "queued"}
    failure: JobError = {"code": "EXPORT_FAILED", "kind": "system", "message": "no"}
    jobs.fail(JOB_ID, error=failure, status="failed", now=utc_now())
    assert error_of(client.get(f"/v1/jobs/{JOB_ID}/bundle")) == (409, "JOB_NOT_COMPLETED")


@pytest.mark.parametrize("damage", ["deleted", "truncated"])
def test_a_bundle_gone_from_disk_is_a_coded_500(
    client: TestClient,
    settings: Settings,
    redis: fakeredis.FakeRedis,
    damage: str,
) -> None:
    job_id = finish(redis, settings)
    path = bundle_path(settings, job_id)
    if damage == "deleted":
        path.unlink()
    else:
        path.write_bytes(BUNDLE[:10])
    assert error_of(client.get(f"/v1/jobs/{job_id}/bundle")) == (500, "ARTIFACT_CORRUPT")


def test_a_completed_export_with_an_unreadable_result_is_a_coded_500(
    client: TestClient, redis: fakeredis.FakeRedis, settings: Settings
) -> None:
    job_id = finish(redis, settings, result={"run_id": "r1", "sha256": 5})
    assert error_of(client.get(f"/v1/jobs/{job_id}/bundle")) == (500, "INTERNAL_ERROR")


def test_downloading_needs_a_key(
    client: TestClient, redis: fakeredis.FakeRedis, settings: Settings
) -> None:
    job_id = finish(redis, settings)
    response = client.get(f"/v1/jobs/{job_id}/bundle", headers={"Authorization": ""})
    assert error_of(response) == (401, "UNAUTHENTICATED")


def test_bundles_live_under_the_artifacts_root_with_ordinary_permissions(
    settings: Settings,
) -> None:
    path = store_bundle(settings, JOB_ID, write_bundle)
    assert path == settings["artifacts_root"] / "exports" / f"{JOB_ID}.tar.gz"
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_a_bundle_that_fails_to_write_leaves_nothing(settings: Settings) -> None:
    def half_then_fail(out: Path) -> None:
        out.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        store_bundle(settings, JOB_ID, half_then_fail)
    assert list(bundle_path(settings, JOB_ID).parent.iterdir()) == []


@pytest.mark.parametrize("job_id", ["../" + "e" * 29, "E" * 32, "e" * 31, "e" * 32 + "/x"])
def test_a_bundle_path_is_only_ever_named_by_a_job_id(settings: Settings, job_id: str) -> None:
    with pytest.raises(ModelTrainerError) as caught:
        bundle_path(settings, job_id)
    assert (caught.value.code, caught.value.details) == ("INVALID_CONFIG", {"field": "job_id"})


def test_a_bundle_stored_with_s3_is_published(s3_settings: Settings, tmp_path: Path) -> None:
    store_bundle(s3_settings, JOB_ID, write_bundle)
    reader: Settings = {**s3_settings, "artifacts_root": tmp_path / "reader"}
    assert stored(reader, bundle_path(reader, JOB_ID))
    assert fetch(reader, bundle_path(reader, JOB_ID))
    assert bundle_path(reader, JOB_ID).read_bytes() == BUNDLE
