"""The one place that builds Redis connections, so every process talks to Redis the same way.

Connections return bytes (``decode_responses=False``): RQ stores binary job data in the same
Redis, and our readers decode explicitly with ``as_text``. The protocol is pinned to RESP2 because
reply shapes (XREAD above all) differ under RESP3 and the readers here parse RESP2.

A `redis+sentinel://` URL (`redis_url.py`) gives a client of redis-py's own Sentinel support:
each new connection asks the sentinels for the current primary, and a connection to a primary
that was demoted is dropped, so the retries below land on the new one after a failover.
"""

from typing import TypeAlias, TypedDict

from redis import Redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from platform_workers.redis_url import SentinelTarget, check_redis_url, sentinel_target

# redis-py 8 ships its own types: `Redis` is not generic, and its command methods are overloaded
# on a sync/async marker, so a plain `Redis` annotation gives precise sync return types.
RedisClient: TypeAlias = Redis

HEALTH_CHECK_INTERVAL_S = 30
CONNECT_TIMEOUT_S = 5
RESP_PROTOCOL = 2
# A dropped connection or a timed-out command is tried again RETRIES times, waiting a jittered
# 50 ms, 100 ms, 200 ms (at most 1 s): a blip is ridden out, a real outage surfaces in < 1 s.
RETRIES = 3
BACKOFF_BASE_S = 0.05
BACKOFF_CAP_S = 1.0


class ClientOptions(TypedDict):
    decode_responses: bool
    health_check_interval: int
    socket_connect_timeout: float
    protocol: int
    retry: Retry


class SentinelOptions(TypedDict):
    socket_connect_timeout: float
    socket_timeout: float


def client_options() -> ClientOptions:
    """Bytes replies, idle connections pinged before reuse, an unreachable host failing within
    CONNECT_TIMEOUT_S instead of hanging a readiness probe, and a lost connection retried with
    backoff (redis-py's own Retry) before the caller sees it."""
    return {
        "decode_responses": False,
        "health_check_interval": HEALTH_CHECK_INTERVAL_S,
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
        "protocol": RESP_PROTOCOL,
        "retry": Retry(
            ExponentialWithJitterBackoff(base=BACKOFF_BASE_S, cap=BACKOFF_CAP_S), RETRIES
        ),
    }


def sentinel_options() -> SentinelOptions:
    """A sentinel that does not answer within CONNECT_TIMEOUT_S is skipped for the next one."""
    return {"socket_connect_timeout": CONNECT_TIMEOUT_S, "socket_timeout": CONNECT_TIMEOUT_S}


def redis_from_url(url: str) -> RedisClient:
    """A client with `client_options()` for any REDIS_URL form; InvalidRedisUrl for a
    malformed one."""
    target = sentinel_target(url)
    if target is not None:
        return _primary(target)
    check_redis_url(url)
    return Redis.from_url(url, **client_options())


def _primary(target: SentinelTarget) -> RedisClient:
    sentinel = Sentinel(target["sentinels"], sentinel_kwargs=sentinel_options())
    primary: RedisClient = sentinel.master_for(
        target["service_name"],
        redis_class=Redis,
        db=target["db"],
        username=target["username"],
        password=target["password"],
        **client_options(),
    )
    return primary


def as_text(value: object) -> str:
    """Decodes one Redis reply value, refusing anything that is not a string on the wire."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a Redis string reply, got {type(value).__name__}")
