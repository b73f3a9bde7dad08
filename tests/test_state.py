"""The state stores, SQLite and PostgreSQL (the real server), behave the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from transforms.core import Validators, redact
from transforms.state import StateError, open_state


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
