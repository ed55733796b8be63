"""The one connection builder: bytes replies, health checks, RESP2, and reply decoding."""

import time

import fakeredis
import pytest
from redis import Redis
from redis.connection import SSLConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.sentinel import SentinelConnectionPool

from platform_workers.redis_conn import (
    BACKOFF_CAP_S,
    HEALTH_CHECK_INTERVAL_S,
    RESP_PROTOCOL,
    RETRIES,
    RedisClient,
    as_text,
    redis_from_url,
)
from platform_workers.redis_url import InvalidRedisUrl


def test_redis_from_url_builds_a_bytes_client_with_health_checks() -> None:
    client = redis_from_url("redis://example.invalid:6390/3")
    kwargs = client.connection_pool.connection_kwargs
    assert isinstance(client, Redis)
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("example.invalid", 6390, 3)
    assert kwargs["decode_responses"] is False
    assert kwargs["health_check_interval"] == HEALTH_CHECK_INTERVAL_S > 0
    assert kwargs["protocol"] == RESP_PROTOCOL == 2
    client.close()


def test_redis_from_url_refuses_an_unknown_scheme() -> None:
    with pytest.raises(ValueError, match="redis://"):
        redis_from_url("http://127.0.0.1:6379/0")


def test_a_fake_client_is_a_redis_client() -> None:
    client: RedisClient = fakeredis.FakeRedis()
    client.set("k", "v")
    assert client.get("k") == b"v"


@pytest.mark.parametrize(("reply", "text"), [(b"caf\xc3\xa9", "café"), ("plain", "plain")])
def test_as_text_decodes_string_replies(reply: bytes | str, text: str) -> None:
    assert as_text(reply) == text


@pytest.mark.parametrize("reply", [1, None, 2.5, [b"a"]])
def test_as_text_refuses_non_string_replies(reply: object) -> None:
    with pytest.raises(TypeError, match="expected a Redis string reply"):
        as_text(reply)


def test_as_text_refuses_bytes_that_are_not_utf8() -> None:
    with pytest.raises(UnicodeDecodeError):
        as_text(b"\xff")


def test_connecting_to_an_unreachable_host_gives_up_within_the_timeout() -> None:
    client = redis_from_url("redis://127.0.0.1:1/0")
    assert client.connection_pool.connection_kwargs["socket_connect_timeout"] == 5


def test_a_lost_connection_is_retried_with_backoff_before_it_surfaces() -> None:
    client = redis_from_url("redis://127.0.0.1:1/0")
    retry = client.get_retry()
    assert retry is not None
    assert retry.get_retries() == RETRIES == 3
    attempts: list[int] = []

    def refuse() -> None:
        attempts.append(1)
        raise RedisConnectionError("Connection refused")

    started = time.monotonic()
    with pytest.raises(RedisConnectionError):
        retry.call_with_retry(refuse, lambda _: None)
    assert len(attempts) == RETRIES + 1
    assert time.monotonic() - started < 4 * BACKOFF_CAP_S
    client.close()


def test_a_tls_url_gives_a_verifying_tls_client_with_the_same_options() -> None:
    url = "rediss://:pw@redis.example:6380/2?ssl_ca_certs=/etc/ca.pem&ssl_cert_reqs=required"
    client = redis_from_url(url)
    pool = client.connection_pool
    assert issubclass(pool.connection_class, SSLConnection)
    kwargs = pool.connection_kwargs
    assert (kwargs["ssl_ca_certs"], kwargs["ssl_cert_reqs"]) == ("/etc/ca.pem", "required")
    assert (kwargs["password"], kwargs["db"], kwargs["protocol"]) == ("pw", 2, RESP_PROTOCOL)
    client.close()


def test_a_sentinel_url_gives_a_client_of_the_current_primary() -> None:
    client = redis_from_url("redis+sentinel://:pw@s1:26380,s2/mymaster/4")
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert (pool.service_name, pool.is_master) == ("mymaster", True)
    assert [
        sentinel.get_connection_kwargs()["port"] for sentinel in pool.sentinel_manager.sentinels
    ] == [26380, 26379]
    kwargs = pool.connection_kwargs
    assert (kwargs["password"], kwargs["db"], kwargs["decode_responses"]) == ("pw", 4, False)
    assert (kwargs["protocol"], kwargs["socket_connect_timeout"]) == (RESP_PROTOCOL, 5)
    assert kwargs["health_check_interval"] == HEALTH_CHECK_INTERVAL_S
    retry = client.get_retry()
    assert retry is not None and retry.get_retries() == RETRIES
    client.close()


def test_a_malformed_url_is_refused_before_any_connection() -> None:
    with pytest.raises(InvalidRedisUrl, match="database must be a whole number"):
        redis_from_url("redis://127.0.0.1:6379/zero")
