"""rq-dashboard takes the same REDIS_URL as the service in its TLS and Sentinel forms (as
docker-compose.yml passes it): it lists a job queued through our client."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
from rq import Queue
from rq.serializers import JSONSerializer
from tests.support.processes import free_port, stop, wait_for
from tests.support.redis_ha import start_sentinel_group, start_tls_redis

from platform_workers.redis_conn import redis_from_url


def _queued_on_the_dashboard(url: str, logs: Path) -> int:
    """Queue one job at `url`, and return how many jobs the dashboard shows on its queue."""
    redis = redis_from_url(url)
    Queue("train", connection=redis, serializer=JSONSerializer).enqueue_call("os.getcwd")
    redis.close()
    port = free_port()
    command = [str(Path(sys.executable).with_name("rq-dashboard")), "--json", "--redis-url", url]
    with logs.open("ab") as log:
        process = subprocess.Popen(
            [*command, "--bind", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    queues_url = f"http://127.0.0.1:{port}/0/data/queues.json"

    def answers() -> bool:
        try:
            return httpx.get(queues_url, timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(answers, timeout=30, what="rq-dashboard")
        (queue,) = httpx.get(queues_url, timeout=5).json()["queues"]
        assert queue["name"] == "train"
        return int(queue["count"])
    finally:
        stop(process)


def test_the_dashboard_reads_a_tls_redis(tmp_path: Path) -> None:
    server, url = start_tls_redis(tmp_path / "redis")
    try:
        assert _queued_on_the_dashboard(url, tmp_path / "dashboard.log") == 1
    finally:
        stop(server)


def test_the_dashboard_reads_a_sentinel_managed_redis(tmp_path: Path) -> None:
    group = start_sentinel_group(tmp_path / "redis")
    try:
        assert _queued_on_the_dashboard(group.url, tmp_path / "dashboard.log") == 1
    finally:
        group.stop()
