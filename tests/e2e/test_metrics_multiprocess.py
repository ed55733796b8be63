"""Several API processes behind one port (`uvicorn --workers 2`) with PROMETHEUS_MULTIPROC_DIR:
whichever process answers a scrape, it counts every process's requests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.support.processes import free_port, stop, wait_for

HEALTHZ = {"method": "GET", "route": "/healthz", "status": "200"}


@pytest.fixture
def url(service_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {**service_env, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "uvicorn", "model_trainer.api.app:create_app", "--factory"]
    api = subprocess.Popen([*command, "--workers", "2", "--port", str(port)], env=env)
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(healthy, timeout=90, what="two API processes")
    yield base
    stop(api)


def healthz_count(url: str) -> float:
    """The /healthz count one scrape shows."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "model_trainer_http_requests_total" and sample.labels == HEALTHZ
    )


def test_every_scrape_counts_every_process_s_requests(url: str, tmp_path: Path) -> None:
    before = healthz_count(url)
    sent = 0
    # New connections until both processes have counted some (each writes its own file).
    while sent < 40 or len(list(tmp_path.glob("counter_*.db"))) < 2:
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
        sent += 1
        assert sent < 1000, "one process took every request"
    assert {healthz_count(url) for _ in range(10)} == {before + sent}
