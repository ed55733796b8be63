"""docker-compose.yml cannot run here, so check what it would start: the commands we test."""

from __future__ import annotations

from pathlib import Path

import yaml

from model_trainer import cli
from model_trainer.settings import DEFAULT_JOB_TIMEOUT_S, load_settings

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
# The compose Redis unless REDIS_URL (TLS or Sentinel included) is set where compose runs.
REDIS_URL = "${REDIS_URL:-redis://redis:6379/0}"


def _at(node: object, *path: str | int) -> object:
    for key in path:
        if isinstance(node, list) and isinstance(key, int):
            node = node[key]
            continue
        if not (isinstance(node, dict) and key in node):
            raise AssertionError(f"no {key!r} in {node!r}")
        node = node[key]
    return node


def _services() -> dict[str, object]:
    loaded: object = yaml.safe_load(COMPOSE.read_text())
    services = _at(loaded, "services")
    assert isinstance(services, dict)
    return {str(name): spec for name, spec in services.items()}


def _command(service: str) -> list[str]:
    command = _at(_services(), service, "command")
    assert isinstance(command, list)
    return [str(part) for part in command]


def test_the_services() -> None:
    assert set(_services()) == {
        "redis",
        "minio",
        "minio-bucket",
        "api",
        "worker-cpu",
        "worker-gpu",
        "dashboard",
        "scheduler",
    }


def test_redis_persists_with_aof() -> None:
    command = _command("redis")
    assert command[command.index("--appendonly") + 1] == "yes"
    assert _at(_services(), "redis", "volumes", 0) == "redis-data:/data"


def test_api_and_workers_run_cli_commands_the_e2e_tests_start() -> None:
    for service in ("api", "worker-cpu", "worker-gpu"):
        command = _command(service)
        assert command[0] == "model-trainer"
        parsed = cli.build_parser().parse_args(command[1:])
        assert parsed.command in {"api", "worker"}
    for service, device in (("worker-cpu", "cpu"), ("worker-gpu", "cuda")):
        parsed = cli.build_parser().parse_args(_command(service)[1:])
        assert (parsed.queues, parsed.device) == ("train,infer", device)


def test_the_gpu_worker_reserves_a_gpu() -> None:
    device = _at(_services(), "worker-gpu", "deploy", "resources", "reservations", "devices", 0)
    assert _at(device, "capabilities") == ["gpu"]
    assert _at(device, "driver") == "nvidia"


def test_one_artifacts_volume_shared_by_every_app_service() -> None:
    for service in ("api", "worker-cpu", "worker-gpu", "dashboard"):
        assert _at(_services(), service, "volumes") == ["artifacts:/var/lib/model-trainer"]
        root = _at(_services(), service, "environment", "ARTIFACTS_ROOT")
        assert isinstance(root, str) and root.startswith("/var/lib/model-trainer/")
        assert _at(_services(), service, "environment", "REDIS_URL") == REDIS_URL


def test_the_dashboard_watches_the_same_redis_and_reads_json_jobs() -> None:
    command = _command("dashboard")
    assert command[0] == "rq-dashboard"
    assert command[command.index("--redis-url") + 1] == REDIS_URL
    assert "--json" in command


def test_a_worker_stop_waits_out_the_longest_generate_or_score() -> None:
    """A SIGTERM'd training requeues itself at once; an inference in flight may run its full
    limit, so the grace period before SIGKILL must be longer."""
    longest = max(DEFAULT_JOB_TIMEOUT_S["generate"], DEFAULT_JOB_TIMEOUT_S["score"])
    for service in ("worker-cpu", "worker-gpu"):
        grace = _at(_services(), service, "stop_grace_period")
        assert isinstance(grace, str) and grace.endswith("s")
        assert int(grace.removesuffix("s")) > longest


def test_the_scheduler_fires_schedules_with_the_apis_data() -> None:
    command = _command("scheduler")
    assert command[0] == "model-trainer"
    assert cli.build_parser().parse_args(command[1:]).command == "scheduler"
    assert _at(_services(), "scheduler", "volumes") == _at(_services(), "api", "volumes")
    assert _at(_services(), "scheduler", "environment") == _at(_services(), "api", "environment")


def test_app_services_use_the_minio_store_once_its_bucket_exists() -> None:
    location = load_settings(
        {
            str(name): str(value)
            for name, value in _mapping(_at(_services(), "api", "environment")).items()
            # REDIS_URL is a compose interpolation (`${REDIS_URL:-…}`), not a URL yet.
            if name != "REDIS_URL"
        }
    )["artifacts_s3"]
    assert location == {
        "bucket": "model-trainer",
        "prefix": "artifacts",
        "endpoint_url": "http://minio:9000",
    }
    bucket_command = _at(_services(), "minio-bucket", "entrypoint", 2)
    assert isinstance(bucket_command, str)
    assert "mc mb --ignore-existing store/model-trainer" in bucket_command
    for service in ("api", "worker-cpu", "worker-gpu", "scheduler"):
        environment = _mapping(_at(_services(), service, "environment"))
        assert environment["AWS_ENDPOINT_URL"] == "http://minio:9000"
        assert environment["AWS_ACCESS_KEY_ID"] == "${MINIO_ROOT_USER:-model-trainer}"
        depends = _mapping(_at(_services(), service, "depends_on"))
        assert depends["minio-bucket"] == {"condition": "service_completed_successfully"}


def test_minio_keeps_its_data_in_a_volume_and_reports_health() -> None:
    assert _at(_services(), "minio", "volumes") == ["minio-data:/data"]
    assert _at(_services(), "minio", "healthcheck", "test") == ["CMD", "mc", "ready", "local"]
    bucket_after = _at(_services(), "minio-bucket", "depends_on", "minio", "condition")
    assert bucket_after == "service_healthy"


def _mapping(node: object) -> dict[str, object]:
    assert isinstance(node, dict)
    return {str(key): value for key, value in node.items()}
