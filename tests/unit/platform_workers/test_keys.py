"""Key and channel names: one convention per domain, shared by the store and JobContext."""

from platform_workers.keys import (
    alias_history_key,
    cancel_key,
    event_stream_key,
    events_channel,
    model_aliases_key,
    model_key,
    model_version_key,
    record_key,
    user_index_key,
    user_models_key,
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


def test_a_users_registry_lives_under_the_user() -> None:
    assert user_models_key("trainer", 7) == "trainer:user:7:models"
    assert model_key("trainer", 7, "m") == "trainer:user:7:model:m"
    assert model_version_key("trainer", 7, "m", 3) == "trainer:user:7:model:m:version:3"
    assert model_aliases_key("trainer", 7, "m") == "trainer:user:7:model:m:aliases"
    assert (
        alias_history_key("trainer", 7, "m", "production")
        == "trainer:user:7:model:m:alias:production:history"
    )
