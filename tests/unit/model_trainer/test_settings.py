"""load_settings reads the environment once, with documented defaults and absolute roots."""

from pathlib import Path

import pytest

from model_trainer.errors import ModelTrainerError
from model_trainer.settings import DEFAULT_JOB_TIMEOUT_S, load_settings

# The limits' documented defaults (README's settings table).
DEFAULT_LIMITS = {
    "max_tokens_per_step": 1024 * 1024,
    "max_text_bytes": 1024 * 1024,
    "max_request_bytes": 4 * 1024 * 1024,
    "max_active_jobs": {"train": 8, "infer": 64},
    "max_user_corpus_bytes": 1024 * 1024 * 1024,
    "max_queue_depth": 10_000,
    "min_schedule_interval_s": 60,
    "max_schedules_per_user": 100,
    "log_level": "INFO",
    "metrics_token": None,
    "worker_device": "auto",
    "distributed": {"max_processes": 8, "timeout_s": 600, "nnodes": 1, "rdzv_endpoint": None},
}


def test_defaults_when_nothing_is_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings({})
    assert settings == {
        "redis_url": "redis://127.0.0.1:6379/0",
        "artifacts_root": tmp_path.resolve() / "var" / "artifacts",
        "artifacts_s3": None,
        "data_root": tmp_path.resolve() / "var" / "data",
        "max_corpus_bytes": 64 * 1024 * 1024,
        "job_timeout_s": DEFAULT_JOB_TIMEOUT_S,
        **DEFAULT_LIMITS,
    }


def test_values_from_a_given_mapping(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "REDIS_URL": "redis://example:6380/2",
            "ARTIFACTS_ROOT": str(tmp_path / "art"),
            "DATA_ROOT": str(tmp_path / "data"),
            "MAX_CORPUS_BYTES": "1234",
            "MAX_TOKENS_PER_STEP": "4096",
            "MAX_ACTIVE_JOBS_INFER": "3",
            "MAX_QUEUE_DEPTH": "50",
            "MIN_SCHEDULE_INTERVAL_S": "5",
            "MAX_SCHEDULES_PER_USER": "3",
        }
    )
    assert (settings["min_schedule_interval_s"], settings["max_schedules_per_user"]) == (5, 3)
    assert settings["max_tokens_per_step"] == 4096
    assert settings["max_active_jobs"] == {"train": 8, "infer": 3}
    assert settings["max_queue_depth"] == 50
    assert settings["redis_url"] == "redis://example:6380/2"
    assert settings["artifacts_root"] == (tmp_path / "art").resolve()
    assert settings["data_root"] == (tmp_path / "data").resolve()
    assert settings["max_corpus_bytes"] == 1234


def test_relative_roots_are_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings({"ARTIFACTS_ROOT": "a/../b", "DATA_ROOT": "./d"})
    assert settings["artifacts_root"].is_absolute()
    assert settings["artifacts_root"] == tmp_path.resolve() / "b"
    assert settings["data_root"] == tmp_path.resolve() / "d"


def test_reads_the_process_environment_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://env-host:6379/5")
    monkeypatch.setenv("ARTIFACTS_ROOT", str(tmp_path / "artifacts"))
    monkeypatch.setenv("DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("MAX_CORPUS_BYTES", "99")
    settings = load_settings()
    assert settings == {
        "redis_url": "redis://env-host:6379/5",
        "artifacts_root": (tmp_path / "artifacts").resolve(),
        "artifacts_s3": None,
        "data_root": (tmp_path / "data").resolve(),
        "max_corpus_bytes": 99,
        "job_timeout_s": DEFAULT_JOB_TIMEOUT_S,
        **DEFAULT_LIMITS,
    }


def test_a_non_integer_size_limit_is_refused() -> None:
    with pytest.raises(ModelTrainerError, match="MAX_CORPUS_BYTES must be a whole number >= 1"):
        load_settings({"MAX_CORPUS_BYTES": "lots"})


def test_job_time_limits_per_type_come_from_the_environment() -> None:
    settings = load_settings({"JOB_TIMEOUT_S_GENERATE": "5", "JOB_TIMEOUT_S_TRAIN": "7200"})
    assert settings["job_timeout_s"] == {
        **DEFAULT_JOB_TIMEOUT_S,
        "generate": 5,
        "train": 7200,
    }


@pytest.mark.parametrize("raw", ["0", "-3", "1.5", "soon", ""])
def test_a_job_time_limit_must_be_whole_positive_seconds(raw: str) -> None:
    with pytest.raises(ModelTrainerError) as caught:
        load_settings({"JOB_TIMEOUT_S_SCORE": raw})
    assert caught.value.code == "INVALID_CONFIG"
    assert "JOB_TIMEOUT_S_SCORE" in caught.value.message


def test_log_level_and_metrics_token_come_from_the_environment() -> None:
    settings = load_settings({"LOG_LEVEL": "warning", "METRICS_TOKEN": "s3cret"})
    assert (settings["log_level"], settings["metrics_token"]) == ("WARNING", "s3cret")
    assert load_settings({"METRICS_TOKEN": ""})["metrics_token"] is None


def test_an_unknown_log_level_is_refused() -> None:
    with pytest.raises(ModelTrainerError, match="LOG_LEVEL must be one of DEBUG, INFO"):
        load_settings({"LOG_LEVEL": "chatty"})


def test_redis_url_takes_tls_and_sentinel_forms() -> None:
    for url in ("rediss://:pw@redis:6380/0?ssl_cert_reqs=required", "redis+sentinel://s1/mymaster"):
        assert load_settings({"REDIS_URL": url})["redis_url"] == url


def test_a_malformed_redis_url_is_refused_without_its_password() -> None:
    with pytest.raises(ModelTrainerError, match="REDIS_URL is malformed: Port") as caught:
        load_settings({"REDIS_URL": "redis://:s3cret@redis:port/0"})
    assert caught.value.code == "INVALID_CONFIG"
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize("choice", ["auto", "cpu", "cuda"])
def test_a_worker_device_comes_from_the_environment(choice: str) -> None:
    assert load_settings({"WORKER_DEVICE": choice})["worker_device"] == choice


def test_an_unknown_worker_device_is_refused() -> None:
    with pytest.raises(ModelTrainerError, match="WORKER_DEVICE must be one of auto, cpu, cuda"):
        load_settings({"WORKER_DEVICE": "tpu"})


def test_distributed_training_settings_come_from_the_environment() -> None:
    settings = load_settings(
        {
            "MAX_TRAIN_PROCESSES": "4",
            "DDP_TIMEOUT_S": "30",
            "DDP_NNODES": "2",
            "DDP_RDZV_ENDPOINT": "10.0.0.5:29400",
        }
    )
    assert settings["distributed"] == {
        "max_processes": 4,
        "timeout_s": 30,
        "nnodes": 2,
        "rdzv_endpoint": "10.0.0.5:29400",
    }


def test_an_s3_artifacts_url_selects_the_s3_store_at_its_endpoint() -> None:
    settings = load_settings(
        {"ARTIFACTS_URL": "s3://my-bucket/team/a/", "S3_ENDPOINT_URL": "http://minio:9000"}
    )
    assert settings["artifacts_s3"] == {
        "bucket": "my-bucket",
        "prefix": "team/a",
        "endpoint_url": "http://minio:9000",
    }
    aws = load_settings(
        {"ARTIFACTS_URL": "s3://my-bucket", "AWS_ENDPOINT_URL": "http://a", "S3_ENDPOINT_URL": "b"}
    )
    assert aws["artifacts_s3"] == {"bucket": "my-bucket", "prefix": "", "endpoint_url": "http://a"}
    assert load_settings({"ARTIFACTS_URL": ""})["artifacts_s3"] is None


@pytest.mark.parametrize("url", ["gs://bucket/x", "s3://", "s3://Upper/x", "s3://a/x", "/srv/art"])
def test_a_malformed_artifacts_url_is_refused_at_load(url: str) -> None:
    with pytest.raises(ModelTrainerError, match="ARTIFACTS_URL must be s3://bucket/prefix") as info:
        load_settings({"ARTIFACTS_URL": url})
    assert info.value.code == "INVALID_CONFIG"
