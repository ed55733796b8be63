"""REDIS_URL's forms: plain, TLS and unix URLs as redis-py reads them, Sentinel URLs parsed
here; a malformed one is refused naming what is wrong, never repeating the password."""

import pytest

from platform_workers.redis_url import InvalidRedisUrl, check_redis_url, sentinel_target


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "redis://:pw@redis:6379",
        "rediss://:pw@redis.example:6380/2?ssl_ca_certs=/etc/ca.pem&ssl_cert_reqs=required",
        "unix:///run/redis.sock?db=1",
        "redis+sentinel://s1:26379,s2,s3:26380/mymaster/1",
    ],
)
def test_every_form_is_accepted(url: str) -> None:
    check_redis_url(url)


def test_a_sentinel_url_names_sentinels_service_database_and_credentials() -> None:
    assert sentinel_target("redis+sentinel://app:p%40ss@s1:26380,s2/my%20primary/3") == {
        "sentinels": [("s1", 26380), ("s2", 26379)],
        "service_name": "my primary",
        "db": 3,
        "username": "app",
        "password": "p@ss",
    }
    target = sentinel_target("redis+sentinel://s1/mymaster")
    assert target is not None
    assert (target["db"], target["username"], target["password"]) == (0, None, None)


def test_other_forms_have_no_sentinel_target() -> None:
    assert sentinel_target("rediss://:pw@redis:6380/0") is None


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://:s3cret@127.0.0.1/0", "must start with one of redis://, rediss://, unix://"),
        ("127.0.0.1:6379", "got no scheme"),
        ("redis://:s3cret@host:port/0", "REDIS_URL is malformed: Port could not be cast"),
        ("redis://:s3cret@host:6379/zero", "database must be a whole number, got 'zero'"),
        ("redis://:s3cret@host/0?db=x", "Invalid value for 'db'"),
        ("redis+sentinel://:s3cret@s1:26379", "name the service: …/service_name[/db]"),
        ("redis+sentinel://:s3cret@s1:26379/", "name the service"),
        ("redis+sentinel://:s3cret@s1:x/mymaster", "a sentinel must be host[:port], got 's1:x'"),
        ("redis+sentinel://:s3cret@s1,/mymaster", "a sentinel must be host[:port], got ''"),
        ("redis+sentinel://:s3cret@s1/mymaster/one", "database must be a whole number"),
        ("redis+sentinel://:s3cret@s1/mymaster?ssl=true", "take no query arguments"),
    ],
)
def test_a_malformed_url_is_refused_without_its_password(url: str, says: str) -> None:
    with pytest.raises(InvalidRedisUrl) as caught:
        check_redis_url(url)
    assert says in str(caught.value)
    assert "s3cret" not in str(caught.value)
