"""The forms REDIS_URL takes, checked before any process connects.

Plain (`redis://`), TLS (`rediss://`, with redis-py's URL query arguments such as
`ssl_ca_certs` and `ssl_cert_reqs`) and unix-socket URLs are redis-py's own. A Sentinel-managed
primary is `redis+sentinel://[[user]:password@]host[:port][,host2[:port2]...]/service[/db]`:
the form rq-dashboard reads too, so one URL serves every process. The password is the primary's
(and its replicas'); sentinels are asked without one.
"""

from __future__ import annotations

from typing import TypedDict
from urllib.parse import unquote

from redis import ConnectionPool

SENTINEL_SCHEME = "redis+sentinel"
SENTINEL_PORT = 26379
SCHEMES = ("redis", "rediss", "unix", SENTINEL_SCHEME)


class SentinelTarget(TypedDict):
    sentinels: list[tuple[str, int]]
    service_name: str
    db: int
    username: str | None
    password: str | None


class InvalidRedisUrl(ValueError):
    """REDIS_URL cannot be used; the message never repeats the URL (it may hold a password)."""


def check_redis_url(url: str) -> None:
    """Raises InvalidRedisUrl naming what is wrong with `url`, in whichever form it is (redis-py
    reads a plain URL's options without connecting, and would take a bad database as 0)."""
    if sentinel_target(url) is not None:
        return
    try:
        pool = ConnectionPool.from_url(url)
    except ValueError as error:
        raise InvalidRedisUrl(f"REDIS_URL is malformed: {error}") from None
    if "path" not in pool.connection_kwargs:
        _db(url.partition("://")[2].partition("?")[0].partition("/")[2])


def sentinel_target(url: str) -> SentinelTarget | None:
    """The sentinels, service and credentials of a `redis+sentinel://` URL; None for any other
    scheme it knows."""
    scheme, separator, rest = url.partition("://")
    if not separator or scheme not in SCHEMES:
        raise InvalidRedisUrl(
            f"REDIS_URL must start with one of {', '.join(f'{s}://' for s in SCHEMES)}, "
            f"got {scheme + separator if separator else 'no scheme'}"
        )
    if scheme != SENTINEL_SCHEME:
        return None
    if "?" in rest or "#" in rest:
        raise InvalidRedisUrl(f"{SENTINEL_SCHEME}:// URLs take no query arguments")
    netloc, _, path = rest.partition("/")
    credentials, _, hosts = netloc.rpartition("@")
    username, _, password = credentials.partition(":")
    service_name, _, db = path.partition("/")
    if not service_name:
        raise InvalidRedisUrl(f"{SENTINEL_SCHEME}:// URLs name the service: …/service_name[/db]")
    return {
        "sentinels": [_sentinel(host) for host in hosts.split(",")],
        "service_name": unquote(service_name),
        "db": _db(db),
        "username": unquote(username) or None,
        "password": unquote(password) or None,
    }


def _sentinel(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":") if ":" in address else (address, "", "")
    if not host or (port and not port.isdigit()):
        raise InvalidRedisUrl(
            f"a sentinel must be host[:port], got {address!r} (separate several with commas)"
        )
    return host, int(port) if port else SENTINEL_PORT


def _db(text: str) -> int:
    if not text:
        return 0
    if not text.isdigit():
        raise InvalidRedisUrl(f"REDIS_URL's database must be a whole number, got {text!r}")
    return int(text)
