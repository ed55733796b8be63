"""Fixtures shared by the e2e tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.support.processes import cli_process, start_api, stop


@pytest.fixture
def url(service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An API and a worker on both queues; this process's CLI reaches the same Redis and roots."""
    for name in ("REDIS_URL", "ARTIFACTS_ROOT", "DATA_ROOT"):
        monkeypatch.setenv(name, service_env[name])
    api, base_url = start_api(service_env)
    worker = cli_process(["worker", "--queues", "train,infer"], service_env)
    yield base_url
    stop(worker)
    stop(api)
