"""Key and channel names: one convention per domain, shared by the store and JobContext."""

from platform_workers.keys import (
    cancel_key,
    event_stream_key,
    events_channel,
    record_key,
    user_index_key,
)


def test_keys_follow_the_domain_convention() -> None:
    assert events_channel("trainer") == "trainer:events"
    assert event_stream_key("trainer", "job-1") == "trainer:events:job-1"
    assert record_key("trainer", "job-1") == "trainer:job:job-1"
    assert cancel_key("trainer", "job-1") == "trainer:cancel:job-1"
    assert user_index_key("trainer", 7) == "trainer:jobs:user:7"


def test_domains_do_not_share_keys() -> None:
    assert record_key("a", "j") != record_key("b", "j")
    assert events_channel("a") != events_channel("b")
