"""Job records in Redis: exact round trips, attempts, terminal states, and stable paging."""

import string
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import fakeredis
import pytest
from hypothesis import given
from hypothesis import strategies as st

from model_trainer.contracts.jobs import (
    DOMAIN,
    ERROR_KINDS,
    JOB_STATUSES,
    JOB_TYPES,
    ORIGIN_KINDS,
    PRIORITIES,
    QUEUE_FOR_TYPE,
    JobError,
    JobOrigin,
    JobRecord,
    JobStatus,
    JobType,
)
from model_trainer.errors import ModelTrainerError
from model_trainer.storage.job_store import (
    CANCEL_TTL_S,
    JobStore,
    created_score,
    index_positions,
)
from platform_core.json_types import JSONObject, JSONValue, PayloadError
from platform_workers.job_context import JobContext
from platform_workers.keys import cancel_key, record_key, user_active_key, user_index_key
from platform_workers.redis_conn import RedisClient

T0 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def client() -> RedisClient:
    return fakeredis.FakeRedis()


@pytest.fixture
def store(client: RedisClient) -> JobStore:
    return JobStore(client)


def _record(
    job_id: str,
    *,
    user_id: int = 1,
    seconds: float = 0.0,
    status: JobStatus = "queued",
    job_type: JobType = "train",
) -> JobRecord:
    """A queued record created `seconds` after T0."""
    return {
        "job_id": job_id,
        "user_id": user_id,
        "type": job_type,
        "queue": QUEUE_FOR_TYPE[job_type],
        "status": status,
        "progress": 0.0,
        "message": "",
        "attempts": 0,
        "created_at": (T0 + timedelta(seconds=seconds)).isoformat(),
        "started_at": None,
        "finished_at": None,
        "heartbeat_at": None,
        "run_id": None,
        "result": None,
        "error": None,
        "priority": "normal",
        "origin": None,
    }


def _full_record() -> JobRecord:
    return {
        "job_id": "job-full",
        "user_id": 42,
        "type": "generate",
        "queue": "infer",
        "status": "failed",
        "progress": 0.625,
        "message": "step 5/8 — ünïcode",
        "attempts": 3,
        "created_at": "2026-11-01T10:00:00.123456+00:00",
        "started_at": "2026-11-01T10:00:01.000+00:00",
        "finished_at": "2026-11-01T10:05:00.000+00:00",
        "heartbeat_at": "2026-11-01T10:04:59.500+00:00",
        "run_id": "run-9",
        "result": {"texts": ["a", "b"], "nested": {"ok": True, "n": None, "x": 1.5}},
        "error": {"code": "CUDA_OOM", "kind": "system", "message": "out of memory"},
        "priority": "low",
        "origin": {"kind": "study", "id": "study-1", "trial": 7},
    }


def _hash(client: RedisClient, job_id: str) -> dict[bytes | str, bytes | str]:
    return client.hgetall(record_key(DOMAIN, job_id))


def test_every_field_round_trips(store: JobStore) -> None:
    record = _full_record()
    store.create(record)
    assert store.get("job-full") == record


def test_none_fields_are_absent_from_the_hash(store: JobStore, client: RedisClient) -> None:
    store.create(_record("job-1"))
    assert store.get("job-1") == _record("job-1")
    stored = set(_hash(client, "job-1"))
    assert stored.isdisjoint(
        {b"started_at", b"finished_at", b"heartbeat_at", b"run_id", b"result", b"error"}
    )
    assert b"job_id" in stored


def test_create_replaces_a_stale_record(store: JobStore) -> None:
    store.create(_full_record())
    fresh: JobRecord = {**_record("job-full"), "user_id": 42}
    store.create(fresh)
    assert store.get("job-full") == fresh


def test_get_of_an_unknown_job_is_none(store: JobStore) -> None:
    assert store.get("nope") is None


def test_create_refuses_a_created_at_that_is_not_iso(store: JobStore, client: RedisClient) -> None:
    bad: JobRecord = {**_record("job-1"), "created_at": "yesterday"}
    with pytest.raises(PayloadError, match="ISO-8601") as caught:
        store.create(bad)
    assert caught.value.field == "created_at"
    assert _hash(client, "job-1") == {}


def test_create_refuses_progress_outside_unit_interval(store: JobStore) -> None:
    with pytest.raises(PayloadError) as caught:
        store.create({**_record("job-1"), "progress": 1.5})
    assert caught.value.field == "progress"


def test_created_score_is_microseconds_and_naive_means_utc() -> None:
    assert created_score("1970-01-01T00:00:01.000002+00:00") == 1_000_002
    assert created_score("2026-11-01T00:00:00") == created_score("2026-11-01T00:00:00+00:00")
    assert created_score("2026-11-01T02:00:00+02:00") == created_score("2026-11-01T00:00:00Z")


def test_mark_running_counts_attempts_and_keeps_the_first_start(store: JobStore) -> None:
    store.create(_record("job-1"))
    assert store.mark_running("job-1", now="2026-11-01T00:00:01+00:00") == 1
    store.fail(
        "job-1",
        error={"code": "INTERNAL_ERROR", "kind": "system", "message": "worker died"},
        status="failed",
        now="2026-11-01T00:00:02+00:00",
    )
    assert store.mark_running("job-1", now="2026-11-01T00:00:03+00:00") == 2
    record = store.get("job-1")
    assert record is not None
    assert record["status"] == "running"
    assert record["attempts"] == 2
    assert record["started_at"] == "2026-11-01T00:00:01+00:00"
    assert (record["finished_at"], record["error"], record["result"]) == (None, None, None)


def test_status_alone_is_read_and_a_damaged_or_missing_one_is_none(
    store: JobStore, client: RedisClient
) -> None:
    store.create(_record("job-1"))
    assert store.status("job-1") == "queued"
    store.mark_running("job-1", now="2026-11-01T00:00:01+00:00")
    assert store.status("job-1") == "running"
    client.hset(record_key(DOMAIN, "job-1"), "status", "exploded")
    assert store.status("job-1") is None
    assert store.status("never-created") is None


def test_set_progress_records_fraction_and_message(store: JobStore) -> None:
    store.create(_record("job-1"))
    store.set_progress("job-1", 0.25, "epoch 1/4")
    record = store.get("job-1")
    assert record is not None
    assert (record["progress"], record["message"]) == (0.25, "epoch 1/4")


@pytest.mark.parametrize("progress", [-0.1, 1.01, float("nan")])
def test_set_progress_refuses_values_outside_unit_interval(
    store: JobStore, progress: float
) -> None:
    store.create(_record("job-1"))
    with pytest.raises(PayloadError, match=r"\[0, 1\]") as caught:
        store.set_progress("job-1", progress, "x")
    assert caught.value.field == "progress"


def test_an_ending_job_leaves_its_users_active_set(store: JobStore, client: RedisClient) -> None:
    """Admission control counts a user's unended jobs per queue by that set's size."""
    for job_id in ("done", "gone"):
        store.create(_record(job_id, user_id=4))
        client.zadd(user_active_key(DOMAIN, 4, "train"), {job_id: 1.0})
    store.complete("done", result={}, now="t1")
    assert client.zrange(user_active_key(DOMAIN, 4, "train"), 0, -1) == [b"gone"]
    store.fail(
        "gone", error={"code": "X", "kind": "user", "message": "m"}, status="failed", now="t"
    )
    assert client.zcard(user_active_key(DOMAIN, 4, "train")) == 0


def test_complete_stores_the_result(store: JobStore) -> None:
    store.create(_record("job-1"))
    store.mark_running("job-1", now="t1")
    store.complete("job-1", result={"loss": 1.25, "run_id": "run-1"}, now="t2")
    record = store.get("job-1")
    assert record is not None
    assert record["status"] == "completed"
    assert record["progress"] == 1.0
    assert record["finished_at"] == "t2"
    assert record["result"] == {"loss": 1.25, "run_id": "run-1"}
    assert record["error"] is None


@pytest.mark.parametrize("status", ["failed", "cancelled"])
def test_fail_stores_the_error_and_drops_a_result(store: JobStore, status: JobStatus) -> None:
    error: JobError = {"code": "TRAINING_CANCELLED", "kind": "user", "message": "stopped"}
    store.create({**_record("job-1"), "result": {"partial": True}})
    if status == "failed":
        store.fail("job-1", error=error, status="failed", now="t9")
    else:
        store.fail("job-1", error=error, status="cancelled", now="t9")
    record = store.get("job-1")
    assert record is not None
    assert (record["status"], record["finished_at"]) == (status, "t9")
    assert record["error"] == error
    assert record["result"] is None


def test_writes_to_an_unknown_job_are_refused(store: JobStore, client: RedisClient) -> None:
    error: JobError = {"code": "X", "kind": "user", "message": "m"}
    writes: list[Callable[[], object]] = [
        lambda: store.mark_running("ghost", now="t"),
        lambda: store.set_progress("ghost", 0.5, "m"),
        lambda: store.complete("ghost", result={}, now="t"),
        lambda: store.fail("ghost", error=error, status="failed", now="t"),
    ]
    for write in writes:
        with pytest.raises(ModelTrainerError) as caught:
            write()
        assert caught.value.code == "JOB_NOT_FOUND"
    assert _hash(client, "ghost") == {}


def test_request_cancel_raises_the_flag_the_job_context_polls(
    store: JobStore, client: RedisClient
) -> None:
    context = JobContext(client, domain=DOMAIN, job_id="job-1", user_id=1, queue="train")
    assert not context.cancelled()
    store.request_cancel("job-1")
    assert 0 < client.ttl(cancel_key(DOMAIN, "job-1")) <= CANCEL_TTL_S
    fresh = JobContext(client, domain=DOMAIN, job_id="job-1", user_id=1, queue="train")
    assert fresh.cancelled()


def test_job_context_heartbeat_lands_in_the_record(store: JobStore, client: RedisClient) -> None:
    store.create(_record("job-1"))
    context = JobContext(client, domain=DOMAIN, job_id="job-1", user_id=1, queue="train")
    context.heartbeat(T0.timestamp())
    record = store.get("job-1")
    assert record is not None
    assert record["heartbeat_at"] == "2026-11-01T00:00:00.000+00:00"


def _ids(records: list[JobRecord]) -> list[str]:
    return [record["job_id"] for record in records]


def test_pages_are_newest_first_and_end_with_no_cursor(store: JobStore) -> None:
    for n in range(7):
        store.create(_record(f"job-{n}", seconds=n))
    first, cursor = store.list_for_user(1, limit=3)
    second, cursor2 = store.list_for_user(1, limit=3, cursor=cursor)
    third, cursor3 = store.list_for_user(1, limit=3, cursor=cursor2)
    assert [_ids(first), _ids(second), _ids(third)] == [
        ["job-6", "job-5", "job-4"],
        ["job-3", "job-2", "job-1"],
        ["job-0"],
    ]
    assert cursor is not None
    assert cursor2 is not None
    assert cursor3 is None


def test_an_exact_last_page_has_no_cursor(store: JobStore) -> None:
    for n in range(3):
        store.create(_record(f"job-{n}", seconds=n))
    page, cursor = store.list_for_user(1, limit=3)
    assert (_ids(page), cursor) == (["job-2", "job-1", "job-0"], None)
    assert store.list_for_user(2) == ([], None)


def test_a_newer_job_between_pages_shifts_nothing(store: JobStore) -> None:
    for n in range(7):
        store.create(_record(f"job-{n}", seconds=n))
    first, cursor = store.list_for_user(1, limit=3)
    store.create(_record("job-new", seconds=100))
    second, cursor = store.list_for_user(1, limit=3, cursor=cursor)
    third, cursor = store.list_for_user(1, limit=3, cursor=cursor)
    assert _ids(first + second + third) == [f"job-{n}" for n in range(6, -1, -1)]
    assert cursor is None
    assert _ids(store.list_for_user(1, limit=1)[0]) == ["job-new"]


@pytest.mark.parametrize("limit", [1, 2, 3, 5])
def test_jobs_created_in_the_same_microsecond_are_neither_skipped_nor_repeated(
    store: JobStore, limit: int
) -> None:
    ids = ["a", "b", "c", "d", "e"]
    for job_id in ids:
        store.create(_record(job_id, seconds=1.0))
    store.create(_record("older", seconds=0.0))
    store.create(_record("newer", seconds=2.0))
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        page, cursor = store.list_for_user(1, limit=limit, cursor=cursor)
        seen += _ids(page)
        if cursor is None:
            break
    assert seen == ["newer", "e", "d", "c", "b", "a", "older"]


def test_filters_apply_while_paging(store: JobStore) -> None:
    for n in range(40):
        done = n % 10 == 0
        store.create(
            _record(
                f"job-{n:02}",
                seconds=n,
                status="completed" if done else "queued",
                job_type="score" if n % 2 else "train",
            )
        )
    first, cursor = store.list_for_user(1, status="completed", limit=2)
    second, cursor = store.list_for_user(1, status="completed", limit=2, cursor=cursor)
    assert (_ids(first), _ids(second), cursor) == (
        ["job-30", "job-20"],
        ["job-10", "job-00"],
        None,
    )
    scores, _ = store.list_for_user(1, job_type="score", limit=100)
    assert _ids(scores) == [f"job-{n:02}" for n in range(39, 0, -2)]
    both, _ = store.list_for_user(1, status="completed", job_type="score")
    assert both == []


def test_users_see_only_their_own_jobs(store: JobStore) -> None:
    store.create(_record("mine", user_id=1))
    store.create(_record("theirs", user_id=2, seconds=1))
    assert _ids(store.list_for_user(1)[0]) == ["mine"]
    assert _ids(store.list_for_user(2)[0]) == ["theirs"]


def test_an_index_entry_without_a_record_is_skipped(store: JobStore, client: RedisClient) -> None:
    for n in range(3):
        store.create(_record(f"job-{n}", seconds=n))
    client.delete(record_key(DOMAIN, "job-1"))
    assert _ids(store.list_for_user(1)[0]) == ["job-2", "job-0"]
    assert client.zcard(user_index_key(DOMAIN, 1)) == 3


@pytest.mark.parametrize("limit", [0, -3])
def test_a_limit_below_one_is_refused(store: JobStore, limit: int) -> None:
    with pytest.raises(ModelTrainerError, match="limit") as caught:
        store.list_for_user(1, limit=limit)
    assert caught.value.code == "INVALID_CONFIG"


@pytest.mark.parametrize("cursor", ["", "garbage!", "ünï", "bm9jb2xvbg==", "YWJjOg=="])
def test_a_forged_cursor_is_refused(store: JobStore, cursor: str) -> None:
    with pytest.raises(ModelTrainerError, match="cursor") as caught:
        store.list_for_user(1, cursor=cursor)
    assert caught.value.code == "INVALID_CONFIG"
    assert caught.value.details == {"field": "cursor"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("user_id", b"abc"),
        ("user_id", b" 7"),
        ("attempts", b"1.5"),
        ("type", b"bogus"),
        ("queue", b"gpu"),
        ("status", b"done"),
        ("progress", b"nan"),
        ("progress", b"2"),
        ("progress", b"half"),
        ("message", b"\xff\xfe"),
        ("result", b"not json"),
        ("result", b"[1, 2]"),
        ("error", b'{"code": "X", "kind": "nobody", "message": "m"}'),
        ("error", b'{"code": "X", "kind": "user"}'),
        ("error", b"{"),
        ("priority", b"urgent"),
        ("origin", b'{"kind": "cron", "id": "s", "trial": null}'),
        ("origin", b'{"kind": "study", "id": "s", "trial": "3"}'),
    ],
)
def test_a_corrupt_field_is_named(
    store: JobStore, client: RedisClient, field: str, value: bytes
) -> None:
    store.create(_full_record())
    client.hset(record_key(DOMAIN, "job-full"), field, value)
    with pytest.raises(PayloadError, match=field) as caught:
        store.get("job-full")
    assert caught.value.field.split(".")[0] == field


@pytest.mark.parametrize(
    ("value", "inner"),
    [
        (b'{"code": "X", "kind": "nobody", "message": "m"}', "error.kind"),
        (b'{"code": "X", "kind": "user"}', "error.message"),
        (b'{"code": 5, "kind": "user", "message": "m"}', "error.code"),
    ],
)
def test_a_corrupt_error_names_its_inner_field(
    store: JobStore, client: RedisClient, value: bytes, inner: str
) -> None:
    store.create(_full_record())
    client.hset(record_key(DOMAIN, "job-full"), "error", value)
    with pytest.raises(PayloadError) as caught:
        store.get("job-full")
    assert caught.value.field == inner


@pytest.mark.parametrize("field", ["job_id", "user_id", "created_at", "status", "progress"])
def test_a_missing_required_field_is_named(
    store: JobStore, client: RedisClient, field: str
) -> None:
    store.create(_full_record())
    client.hdel(record_key(DOMAIN, "job-full"), field)
    with pytest.raises(PayloadError, match="required") as caught:
        store.get("job-full")
    assert caught.value.field == field


def test_a_record_from_before_priorities_is_normal(store: JobStore, client: RedisClient) -> None:
    store.create(_full_record())
    client.hdel(record_key(DOMAIN, "job-full"), "priority")
    record = store.get("job-full")
    assert record is not None
    assert record["priority"] == "normal"


def test_index_replies_without_scores_are_refused() -> None:
    scoreless: list[bytes | str] = [b"job-1"]
    with pytest.raises(TypeError, match="pairs"):
        index_positions(scoreless)
    with pytest.raises(TypeError, match="scores"):
        index_positions([[b"job-1", b"12"]])


# --- property: any valid record round-trips exactly -------------------------------------------

_text = st.text(max_size=20)
_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text
)
_json_values: st.SearchStrategy[JSONValue] = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)
_json_objects: st.SearchStrategy[JSONObject] = st.dictionaries(_text, _json_values, max_size=4)
_timestamps = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
).map(lambda moment: moment.isoformat())


@st.composite
def _errors(draw: st.DrawFn) -> JobError:
    return {
        "code": draw(_text),
        "kind": draw(st.sampled_from(ERROR_KINDS)),
        "message": draw(_text),
    }


@st.composite
def _origins(draw: st.DrawFn) -> JobOrigin:
    return {
        "kind": draw(st.sampled_from(ORIGIN_KINDS)),
        "id": draw(_text),
        "trial": draw(st.none() | st.integers(min_value=0, max_value=10_000)),
    }


@st.composite
def _records(draw: st.DrawFn) -> JobRecord:
    job_type = draw(st.sampled_from(JOB_TYPES))
    return {
        "job_id": draw(st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1)),
        "user_id": draw(st.integers(min_value=-(2**62), max_value=2**62)),
        "type": job_type,
        "queue": QUEUE_FOR_TYPE[job_type],
        "status": draw(st.sampled_from(JOB_STATUSES)),
        "progress": draw(st.floats(min_value=0.0, max_value=1.0)),
        "message": draw(_text),
        "attempts": draw(st.integers(min_value=0, max_value=1000)),
        "created_at": draw(_timestamps),
        "started_at": draw(st.none() | _timestamps),
        "finished_at": draw(st.none() | _timestamps),
        "heartbeat_at": draw(st.none() | _timestamps),
        "run_id": draw(st.none() | _text),
        "result": draw(st.none() | _json_objects),
        "error": draw(st.none() | _errors()),
        "priority": draw(st.sampled_from(PRIORITIES)),
        "origin": draw(st.none() | _origins()),
    }


@given(_records())
def test_any_valid_record_round_trips_exactly(record: JobRecord) -> None:
    store = JobStore(fakeredis.FakeRedis())
    store.create(record)
    assert store.get(record["job_id"]) == record
    assert _ids(store.list_for_user(record["user_id"])[0]) == [record["job_id"]]
