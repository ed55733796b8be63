"""Async Redis connections, for readers that live on an event loop (the API's SSE followers).

Built like ``redis_conn.redis_from_url`` (bytes replies, RESP2, bounded connect time, the same
retries with backoff, the same URL forms) with a blocking pool: a thousand followers share a
few connections and queue for one, instead of each opening its own socket when they all read
at once. A `redis+sentinel://` URL gets redis-py's async Sentinel pool made blocking the same
way, so followers reconnect to the new primary after a failover.
"""

from typing import TypeAlias

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialWithJitterBackoff

from platform_workers.redis_conn import (
    BACKOFF_BASE_S,
    BACKOFF_CAP_S,
    CONNECT_TIMEOUT_S,
    HEALTH_CHECK_INTERVAL_S,
    RESP_PROTOCOL,
    RETRIES,
    sentinel_options,
)
from platform_workers.redis_url import SentinelTarget, check_redis_url, sentinel_target

AsyncRedisClient: TypeAlias = Redis

MAX_CONNECTIONS = 32
SOCKET_TIMEOUT_S = 10.0
POOL_TIMEOUT_S = 10.0


class BlockingSentinelConnectionPool(SentinelConnectionPool, BlockingConnectionPool):
    """Sentinel's primary discovery with the blocking pool's bounded, queued connections."""


def async_redis_from_url(url: str, *, max_connections: int = MAX_CONNECTIONS) -> AsyncRedisClient:
    """A client owning its pool; a reply that takes longer than SOCKET_TIMEOUT_S (Redis hung)
    and a wait for a free connection longer than POOL_TIMEOUT_S both raise, never hang."""
    target = sentinel_target(url)
    if target is not None:
        return _primary(target, max_connections)
    check_redis_url(url)
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=POOL_TIMEOUT_S,
        decode_responses=False,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=SOCKET_TIMEOUT_S,
        protocol=RESP_PROTOCOL,
        retry=_retry(),
    )
    return Redis.from_pool(pool)


def _primary(target: SentinelTarget, max_connections: int) -> AsyncRedisClient:
    sentinel = Sentinel(target["sentinels"], sentinel_kwargs=sentinel_options())
    primary: AsyncRedisClient = sentinel.master_for(
        target["service_name"],
        redis_class=Redis,
        connection_pool_class=BlockingSentinelConnectionPool,
        max_connections=max_connections,
        timeout=POOL_TIMEOUT_S,
        db=target["db"],
        username=target["username"],
        password=target["password"],
        decode_responses=False,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=SOCKET_TIMEOUT_S,
        protocol=RESP_PROTOCOL,
        retry=_retry(),
    )
    return primary


def _retry() -> Retry:
    return Retry(ExponentialWithJitterBackoff(base=BACKOFF_BASE_S, cap=BACKOFF_CAP_S), RETRIES)
