"""Async Redis connections, for readers that live on an event loop (the API's SSE followers).

Built like ``redis_conn.redis_from_url`` (bytes replies, RESP2, bounded connect time, the same
retries with backoff) with a blocking pool: a thousand followers share a few connections and
queue for one, instead of each opening its own socket when they all read at once.
"""

from typing import TypeAlias

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

from platform_workers.redis_conn import (
    BACKOFF_BASE_S,
    BACKOFF_CAP_S,
    CONNECT_TIMEOUT_S,
    HEALTH_CHECK_INTERVAL_S,
    RESP_PROTOCOL,
    RETRIES,
)

AsyncRedisClient: TypeAlias = Redis

MAX_CONNECTIONS = 32
SOCKET_TIMEOUT_S = 10.0
POOL_TIMEOUT_S = 10.0


def async_redis_from_url(url: str, *, max_connections: int = MAX_CONNECTIONS) -> AsyncRedisClient:
    """A client owning its pool; a reply that takes longer than SOCKET_TIMEOUT_S (Redis hung)
    and a wait for a free connection longer than POOL_TIMEOUT_S both raise, never hang."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=POOL_TIMEOUT_S,
        decode_responses=False,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=SOCKET_TIMEOUT_S,
        protocol=RESP_PROTOCOL,
        retry=Retry(ExponentialWithJitterBackoff(base=BACKOFF_BASE_S, cap=BACKOFF_CAP_S), RETRIES),
    )
    return Redis.from_pool(pool)
