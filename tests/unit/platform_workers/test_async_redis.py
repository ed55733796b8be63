"""The async builder takes every REDIS_URL form with the sync builder's options and a bounded,
blocking pool (Sentinel's included)."""

import asyncio

import pytest
from redis.asyncio import BlockingConnectionPool
from redis.asyncio.connection import SSLConnection
from redis.asyncio.sentinel import SentinelConnectionPool

from platform_workers.async_redis import (
    POOL_TIMEOUT_S,
    BlockingSentinelConnectionPool,
    async_redis_from_url,
)
from platform_workers.redis_conn import RESP_PROTOCOL, RETRIES
from platform_workers.redis_url import InvalidRedisUrl


def test_a_tls_url_gives_a_blocking_pool_of_tls_connections() -> None:
    client = async_redis_from_url("rediss://:pw@redis:6380/1?ssl_cert_reqs=none", max_connections=3)
    pool = client.connection_pool
    assert isinstance(pool, BlockingConnectionPool)
    assert issubclass(pool.connection_class, SSLConnection)
    assert (pool.max_connections, pool.timeout) == (3, POOL_TIMEOUT_S)
    assert pool.connection_kwargs["ssl_cert_reqs"] == "none"
    asyncio.run(client.aclose())


def test_a_sentinel_url_gives_a_blocking_sentinel_pool_of_the_primary() -> None:
    client = async_redis_from_url("redis+sentinel://:pw@s1,s2:26380/mymaster/2", max_connections=4)
    pool = client.connection_pool
    assert isinstance(pool, BlockingSentinelConnectionPool)
    assert isinstance(pool, SentinelConnectionPool) and isinstance(pool, BlockingConnectionPool)
    assert (pool.service_name, pool.is_master) == ("mymaster", True)
    assert (pool.max_connections, pool.timeout) == (4, POOL_TIMEOUT_S)
    kwargs = pool.connection_kwargs
    assert (kwargs["password"], kwargs["db"], kwargs["protocol"]) == ("pw", 2, RESP_PROTOCOL)
    assert kwargs["decode_responses"] is False
    retry = client.get_retry()
    assert retry is not None and retry.get_retries() == RETRIES
    asyncio.run(client.aclose())


def test_a_malformed_url_is_refused() -> None:
    with pytest.raises(InvalidRedisUrl, match="got no scheme"):
        async_redis_from_url("127.0.0.1:6379")
