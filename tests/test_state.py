"""The state stores, SQLite and PostgreSQL (the real server), behave the same."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from transforms.core import Validators, redact
from transforms.state import StateError, check_state_uri, is_local, open_state, sqlite_path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def state_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'nested' / 'state.db'}"
    return request.getfixturevalue("postgres_uri")


def test_commit_then_read_back(state_uri: str) -> None:
    store = open_state(state_uri)
    assert store.validators(["https://a.example/feed"]) == {}
    assert store.seen(["x", "y"]) == set()
    modified = "Tue, 04 Mar 2025 07:45:00 GMT"
    store.commit("run1", {"https://a.example/feed": Validators('"abc"', None),
                          "https://b.example/feed": Validators(None, modified)},
                 ["x", "y"])
    store.close()

    reopened = open_state(state_uri)  # the state outlives the process that wrote it
    assert reopened.validators(["https://a.example/feed", "https://b.example/feed", "other"]) == {
        "https://a.example/feed": Validators('"abc"', None),
        "https://b.example/feed": Validators(None, modified),
    }
    assert reopened.seen(["x", "z"]) == {"x"}
    reopened.commit("run2", {"https://a.example/feed": Validators('"def"', None)}, ["x", "z"])
    assert reopened.validators(["https://a.example/feed"])["https://a.example/feed"].etag == (
        '"def"')
    assert reopened.seen(["x", "y", "z"]) == {"x", "y", "z"}
    assert reopened.committed_runs() == {"run1", "run2"}
    reopened.close()


def test_writes_on_one_connection_carry_nothing_over_from_the_last(state_uri: str) -> None:
    # PostgreSQL's writes go through a staging table per connection: each write must find it
    # empty, even after one that failed.
    store = open_state(state_uri)
    feed = "https://a.example/feed"
    for etag in ('"one"', '"two"', '"three"'):
        store.commit(f"run {etag}", {feed: Validators(etag, None)}, ["x"])
    assert store.validators([feed]) == {feed: Validators('"three"', None)}
    store.save_feed_health({feed: '{"health_class": "healthy"}'})
    if state_uri.startswith("postgresql"):  # SQLite keeps any text
        with pytest.raises(Exception, match="json"):
            store.save_feed_health({feed + "?b": '{"health_class": "quiet"}', feed: "not JSON"})
    store.save_feed_health({feed: '{"health_class": "failing"}'})
    assert json.loads(store.feed_health([feed, feed + "?b"])[feed]) == {"health_class": "failing"}
    assert list(store.feed_health()) == [feed]  # every feed's, asked for none in particular
    assert store.seen(["x"]) == {"x"}
    store.close()


def test_many_ids_are_looked_up_in_batches(state_uri: str) -> None:
    store = open_state(state_uri)
    ids = [f"{n:032x}" for n in range(1200)]
    store.commit("big", {}, ids[::2])
    assert store.seen(ids) == set(ids[::2])
    store.close()


def test_bad_state_uris() -> None:
    with pytest.raises(StateError, match="unsupported state URI"):
        open_state("redis://127.0.0.1/0")
    with pytest.raises(StateError, match="cannot use state database postgresql://u:\\*\\*\\*@"):
        open_state("postgresql://u:secret@127.0.0.1:5432/no_such_db_here")
    with pytest.raises(StateError, match="table_prefix"):
        open_state("postgresql://postgres@127.0.0.1:5432/test?table_prefix=Bad-Prefix")


def test_passwords_are_redacted() -> None:
    assert redact("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact("sqlite:.newsbeam/state.db") == "sqlite:.newsbeam/state.db"


@pytest.mark.parametrize(("uri", "path"), [
    ("sqlite:.newsbeam/state.db", ".newsbeam/state.db"),
    ("sqlite:///var/lib/newsbeam/state.db", "/var/lib/newsbeam/state.db"),
    ("sqlite:runs:2025.db", "runs:2025.db"),  # a colon in the file name is the file's
    ("sqlite://state.db", "state.db"),  # as some write a relative one
])
def test_the_file_of_an_sqlite_state(uri: str, path: str) -> None:
    assert sqlite_path(uri) == Path(path)
    assert is_local(uri) and check_state_uri(uri) == uri


def test_an_sqlite_state_needs_a_path() -> None:
    with pytest.raises(StateError, match=r"^sqlite state URI needs a path, e\.g\. "
                                         r"sqlite:\.newsbeam/state\.db$"):
        sqlite_path("sqlite:")


@pytest.mark.parametrize("uri", ["postgresql://u@db/news", "postgres://u@db/news",
                                 "POSTGRESQL://u@db/news"])
def test_postgresql_states_are_known_by_either_scheme(uri: str) -> None:
    assert check_state_uri(uri) == uri and not is_local(uri)


def test_an_unknown_state_is_refused_without_its_password() -> None:
    with pytest.raises(StateError) as refused:
        check_state_uri("mysql://u:secret@db/news")
    assert str(refused.value) == ("unsupported state URI 'mysql://u:***@db/news': use"
                                  " sqlite:PATH or postgresql://...")


def test_an_sqlite_state_makes_its_folders_and_says_when_it_cannot(tmp_path: Path) -> None:
    open_state(f"sqlite:{tmp_path / 'a' / 'b' / 'state.db'}").close()
    assert (tmp_path / "a" / "b" / "state.db").is_file()
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(StateError, match=f"^cannot open state file {tmp_path}/file/state.db: "):
        open_state(f"sqlite:{tmp_path / 'file' / 'state.db'}")


def test_a_store_is_usable_from_another_thread_than_the_one_that_opened_it(
    state_uri: str,
) -> None:
    # A runner may tear a DoFn down on another thread than the one that set it up (Prism).
    store = open_state(state_uri)
    errors: list[BaseException] = []

    def use() -> None:
        try:
            store.commit("r", {}, ["x"])
            assert store.seen(["x"]) == {"x"}
        except BaseException as error:  # noqa: BLE001  (reported below)
            errors.append(error)

    thread = threading.Thread(target=use)
    thread.start()
    thread.join()
    store.close()
    assert errors == []


def test_stream_windows_are_remembered_per_stream(state_uri: str) -> None:
    store = open_state(state_uri)
    store.commit("stream-a", {}, ["x"], window="w1")
    store.commit("stream-a", {}, [], window="w2")
    store.commit("stream-b", {}, [], window="w1")
    store.commit("stream-a", {}, ["y"], window="w1")  # a firing committed twice: once
    assert store.committed_windows("stream-a", ["w1", "w2", "w3"]) == {"w1", "w2"}
    assert store.committed_windows("stream-b", ["w1", "w2"]) == {"w1"}
    assert store.committed_windows("stream-c", []) == set()
    assert store.seen(["x", "y"]) == {"x", "y"}
    store.close()


def test_sqlite_times_are_utc_and_runs_add_up_their_records(tmp_path: Path) -> None:
    store = open_state(f"sqlite:{tmp_path / 'state.db'}")
    store.commit("r1", {"https://a.example/f": Validators('"e"', None)}, ["x", "y"])
    store.commit("r1", {}, ["z"])
    store.close()
    with sqlite3.connect(tmp_path / "state.db") as db:
        assert db.execute("SELECT records FROM runs WHERE run_id = 'r1'").fetchone() == (3,)
        times = [row[0] for table, column in (("runs", "committed_at"),
                                              ("seen_articles", "first_seen"),
                                              ("feed_validators", "updated_at"))
                 for row in db.execute(f"SELECT {column} FROM {table}")]
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert times and all(time.endswith("+00:00") for time in times)


def test_a_postgresql_state_takes_connection_options_and_every_prefix_character(
    postgres_uri: str,
) -> None:
    every = "abcdefghijklmnopqrstuvwxyz0123456789_"
    base = postgres_uri.split("?")[0]
    store = open_state(f"{base}?sslmode=disable&application_name=newsbeam-test"
                       f"&table_prefix={every}")
    store.commit("r", {}, ["x"])
    assert store.seen(["x"]) == {"x"} and store.committed_runs() == {"r"}
    store.close()
    import psycopg

    with psycopg.connect(base, autocommit=True) as db:
        for table in ("feed_validators", "seen_articles", "runs", "stream_windows"):
            db.execute(f"DROP TABLE IF EXISTS {every}{table}")


def test_topic_counts_keep_their_instant_whatever_the_machines_time_zone(
    state_uri: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # SQLite compares the periods' ends as text: each must be written, and asked for, in UTC,
    # not in the machine's zone (the tests run in UTC, where the two cannot be told apart).
    end = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    monkeypatch.setenv("TZ", "Asia/Taipei")
    time.tzset()
    try:
        store = open_state(state_uri)
        store.save_topic_counts("run", end - timedelta(hours=3), {"trade": 2})
        store.save_topic_counts("run", end, {"trade": 5})
        store.save_topic_counts("run", end, {"trade": 6}, pane=0)  # a run's one pane, again
        assert store.topic_counts("run", end - timedelta(hours=1), end + timedelta(hours=1)) == {
            "trade": [6]}
        assert store.topic_counts("run", end - timedelta(hours=4), end - timedelta(hours=2)) == {
            "trade": [2]}
        store.close()
    finally:
        monkeypatch.undo()
        time.tzset()
