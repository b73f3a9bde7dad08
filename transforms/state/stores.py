"""What makes scheduled runs incremental: feed validators and the ids of articles written.

Two stores behind one interface: an embedded SQLite file (the default, for runs on one machine)
and PostgreSQL (for runs whose workers are spread over several machines). Reads happen during a
run (feed validators before it starts, seen article ids in DedupEntries); writes happen once, in
`commit`, after the run's outputs are durably written, so a run that crashes commits nothing and
its re-run redoes the work.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit, urlunsplit

from transforms.core import (
    SecretError,
    Validators,
    lock_table_creation,
    redact,
    upsert_by_copy,
    with_secret_password,
)

DEFAULT_STATE = "sqlite:.newsbeam/state.db"
LOOKUP_BATCH = 500
_TABLE_PREFIX_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_")


class StateError(Exception):
    """A state URI that cannot be used, or a store that cannot be reached."""


class StateStore(Protocol):
    """Feed validators and seen article ids, persisted between runs."""

    def validators(self, feed_urls: Sequence[str]) -> dict[str, Validators]: ...

    def seen(self, ids: Sequence[str]) -> set[str]: ...

    def committed_runs(self) -> set[str]: ...

    def committed_windows(self, stream_id: str, labels: Sequence[str]) -> set[str]:
        """Which of a stream's window firings (their pane labels) have been committed."""
        ...

    def commit(
        self, run_id: str, validators: Mapping[str, Validators], ids: Iterable[str],
        window: str | None = None,
    ) -> None:
        """Remember `ids` as done by `run_id`, and the feeds' validators, in one transaction;
        with `window`, also that this firing of the stream `run_id`'s window is committed."""
        ...

    def feed_health(self, feed_urls: Sequence[str] | None = None) -> dict[str, str]:
        """The kept health of these feeds (of every feed, without `feed_urls`), encoded
        (transforms.health.encode)."""
        ...

    def save_feed_health(self, rows: Mapping[str, str]) -> None:
        """Keep these feeds' health (feed URL -> encoded), replacing what was kept."""
        ...

    def topic_counts(self, period: str, since: datetime, before: datetime
                     ) -> dict[str, list[int]]:
        """Each topic's count in each period of this kind that ended after `since` and before
        `before`, oldest first (the panes of a stream's window added up)."""
        ...

    def save_topic_counts(self, period: str, end: datetime, counts: Mapping[str, int],
                          pane: int = 0) -> None:
        """Keep each topic's count in one pane of the period of this kind that ended at `end`
        (saving the same pane again replaces it)."""
        ...

    def close(self) -> None: ...


def open_state(uri: str) -> StateStore:
    """Open the store a state URI names: `sqlite:PATH` or `postgresql://...[?table_prefix=P]`."""
    if is_local(check_state_uri(uri)):
        return SqliteState(sqlite_path(uri))
    return PostgresState(uri)


def check_state_uri(uri: str) -> str:
    """`uri` if it names a kind of store newsbeam has (StateError otherwise)."""
    if uri.split(":", 1)[0].lower() not in ("sqlite", "postgresql", "postgres"):
        raise StateError(
            f"unsupported state URI {redact(uri)!r}: use sqlite:PATH or postgresql://...")
    return uri


def sqlite_path(uri: str) -> Path:
    """The file of a `sqlite:PATH` URI (`sqlite:///abs/path.db` is accepted too)."""
    path = uri.split(":", 1)[1]
    if path.startswith("//"):
        path = path[2:]
    if not path:
        raise StateError("sqlite state URI needs a path, e.g. sqlite:.newsbeam/state.db")
    return Path(path)


def is_local(uri: str) -> bool:
    """True for a store only this machine can reach (an SQLite file)."""
    return uri.split(":", 1)[0].lower() == "sqlite"


def postgres_state(uri: str) -> tuple[str, str]:
    """The connection URI of a PostgreSQL state (without newsbeam's own `table_prefix`) and its
    table prefix (default `newsbeam_`); StateError for a prefix that is not a plain name."""
    parts = urlsplit(uri)
    options = parse_qs(parts.query)
    prefix = options.pop("table_prefix", ["newsbeam_"])[0]
    if not set(prefix) <= _TABLE_PREFIX_CHARS:
        raise StateError(f"table_prefix {prefix!r}: use lower-case letters, digits and _")
    conninfo = urlunsplit(parts._replace(
        query="&".join(f"{k}={v[0]}" for k, v in options.items())))
    return conninfo, prefix


def _chunks(items: Sequence[str], size: int = LOOKUP_BATCH) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _now() -> datetime:
    return datetime.now(UTC)


class SqliteState:
    """State in an SQLite file: safe for several reader processes on one machine."""

    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # A runner may tear a DoFn down on another thread than the one that set it up (Prism
            # does); a DoFn instance still runs one bundle at a time.
            self._db = sqlite3.connect(path, timeout=30, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
            with self._db:
                self._db.executescript(
                    """
                    CREATE TABLE IF NOT EXISTS feed_validators (
                        feed_url TEXT PRIMARY KEY, etag TEXT, last_modified TEXT,
                        updated_at TEXT NOT NULL);
                    CREATE TABLE IF NOT EXISTS seen_articles (
                        id TEXT PRIMARY KEY, run_id TEXT NOT NULL, first_seen TEXT NOT NULL);
                    CREATE TABLE IF NOT EXISTS runs (
                        run_id TEXT PRIMARY KEY, records INTEGER NOT NULL,
                        committed_at TEXT NOT NULL);
                    CREATE TABLE IF NOT EXISTS stream_windows (
                        stream_id TEXT NOT NULL, label TEXT NOT NULL,
                        committed_at TEXT NOT NULL, PRIMARY KEY (stream_id, label));
                    CREATE TABLE IF NOT EXISTS feed_health (
                        feed_url TEXT PRIMARY KEY, health TEXT NOT NULL,
                        updated_at TEXT NOT NULL);
                    CREATE TABLE IF NOT EXISTS topic_counts (
                        topic TEXT NOT NULL, period TEXT NOT NULL, period_end TEXT NOT NULL,
                        pane INTEGER NOT NULL, count INTEGER NOT NULL,
                        PRIMARY KEY (topic, period, period_end, pane));
                    """
                )
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"cannot open state file {path}: {exc}") from exc

    def validators(self, feed_urls: Sequence[str]) -> dict[str, Validators]:
        found: dict[str, Validators] = {}
        for chunk in _chunks(list(feed_urls)):
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                "SELECT feed_url, etag, last_modified FROM feed_validators"
                f" WHERE feed_url IN ({marks})", list(chunk),
            )
            found.update({url: Validators(etag, modified) for url, etag, modified in rows})
        return found

    def seen(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(list(ids)):
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT id FROM seen_articles WHERE id IN ({marks})",
                                    list(chunk))
            found.update(row[0] for row in rows)
        return found

    def committed_runs(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT run_id FROM runs")}

    def committed_windows(self, stream_id: str, labels: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(list(labels)):
            marks = ",".join("?" * len(chunk))
            found.update(row[0] for row in self._db.execute(
                f"SELECT label FROM stream_windows WHERE stream_id = ? AND label IN ({marks})",
                (stream_id, *chunk)))
        return found

    def commit(
        self, run_id: str, validators: Mapping[str, Validators], ids: Iterable[str],
        window: str | None = None,
    ) -> None:
        now = _now().isoformat()
        id_list = list(ids)
        with self._db:  # one transaction: all of it or none of it
            if window is not None:
                self._db.execute(
                    "INSERT INTO stream_windows (stream_id, label, committed_at)"
                    " VALUES (?, ?, ?) ON CONFLICT DO NOTHING", (run_id, window, now))
            self._db.executemany(
                "INSERT INTO feed_validators (feed_url, etag, last_modified, updated_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (feed_url) DO UPDATE SET"
                " etag = excluded.etag, last_modified = excluded.last_modified,"
                " updated_at = excluded.updated_at",
                [(url, v.etag, v.last_modified, now) for url, v in validators.items()],
            )
            self._db.executemany(
                "INSERT INTO seen_articles (id, run_id, first_seen) VALUES (?, ?, ?)"
                " ON CONFLICT (id) DO NOTHING",
                [(article_id, run_id, now) for article_id in id_list],
            )
            self._db.execute(
                "INSERT INTO runs (run_id, records, committed_at) VALUES (?, ?, ?)"
                " ON CONFLICT (run_id) DO UPDATE SET records = runs.records + excluded.records",
                (run_id, len(id_list), now),
            )

    def feed_health(self, feed_urls: Sequence[str] | None = None) -> dict[str, str]:
        if feed_urls is None:
            return dict(self._db.execute("SELECT feed_url, health FROM feed_health"))
        found: dict[str, str] = {}
        for chunk in _chunks(list(feed_urls)):
            marks = ",".join("?" * len(chunk))
            found.update(self._db.execute(
                f"SELECT feed_url, health FROM feed_health WHERE feed_url IN ({marks})",
                list(chunk)))
        return found

    def save_feed_health(self, rows: Mapping[str, str]) -> None:
        now = _now().isoformat()
        with self._db:
            self._db.executemany(
                "INSERT INTO feed_health (feed_url, health, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (feed_url) DO UPDATE SET health = excluded.health,"
                " updated_at = excluded.updated_at",
                [(url, health, now) for url, health in rows.items()])

    def topic_counts(self, period: str, since: datetime, before: datetime
                     ) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        for topic, count in self._db.execute(
                "SELECT topic, sum(count) FROM topic_counts WHERE period = ?"
                " AND period_end > ? AND period_end < ? GROUP BY topic, period_end"
                " ORDER BY period_end", (period, since.astimezone(UTC).isoformat(),
                                         before.astimezone(UTC).isoformat())):
            found.setdefault(topic, []).append(count)
        return found

    def save_topic_counts(self, period: str, end: datetime, counts: Mapping[str, int],
                          pane: int = 0) -> None:
        with self._db:
            self._db.executemany(
                "INSERT INTO topic_counts (topic, period, period_end, pane, count)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (topic, period, period_end, pane)"
                " DO UPDATE SET count = excluded.count",
                [(topic, period, end.astimezone(UTC).isoformat(), pane, n)
                 for topic, n in counts.items()])

    def close(self) -> None:
        self._db.close()


class PostgresState:
    """State in PostgreSQL tables (`<prefix>feed_validators`, `<prefix>seen_articles`,
    `<prefix>runs`, `<prefix>stream_windows`, `<prefix>feed_health`), for runs whose workers
    are on several machines."""

    def __init__(self, uri: str) -> None:
        import psycopg  # imported here: SQLite users need no PostgreSQL driver loaded

        conninfo, prefix = postgres_state(uri)
        self._t = {name: f"{prefix}{name}" for name in ("feed_validators", "seen_articles",
                                                         "runs", "stream_windows",
                                                         "feed_health", "topic_counts")}
        try:
            self._db = psycopg.connect(with_secret_password(conninfo), connect_timeout=10,
                                       autocommit=False)
            with self._db.transaction():
                lock_table_creation(self._db)
                self._db.execute(
                    f"CREATE TABLE IF NOT EXISTS {self._t['feed_validators']} ("
                    " feed_url TEXT PRIMARY KEY, etag TEXT, last_modified TEXT,"
                    " updated_at TIMESTAMPTZ NOT NULL)")
                self._db.execute(
                    f"CREATE TABLE IF NOT EXISTS {self._t['seen_articles']} ("
                    " id TEXT PRIMARY KEY, run_id TEXT NOT NULL, first_seen TIMESTAMPTZ NOT NULL)")
                self._db.execute(
                    f"CREATE TABLE IF NOT EXISTS {self._t['runs']} ("
                    " run_id TEXT PRIMARY KEY, records INTEGER NOT NULL,"
                    " committed_at TIMESTAMPTZ NOT NULL)")
                self._db.execute(
                    f"CREATE TABLE IF NOT EXISTS {self._t['stream_windows']} ("
                    " stream_id TEXT NOT NULL, label TEXT NOT NULL,"
                    " committed_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (stream_id, label))")
                self._db.execute(
                    f"CREATE TABLE IF NOT EXISTS {self._t['feed_health']} ("
                    " feed_url TEXT PRIMARY KEY, health JSONB NOT NULL,"
                    " updated_at TIMESTAMPTZ NOT NULL)")
                self._db.execute(
                    f"CREATE TABLE IF NOT EXISTS {self._t['topic_counts']} ("
                    " topic TEXT NOT NULL, period TEXT NOT NULL,"
                    " period_end TIMESTAMPTZ NOT NULL, pane INTEGER NOT NULL,"
                    " count INTEGER NOT NULL, PRIMARY KEY (topic, period, period_end, pane))")
        except (psycopg.Error, SecretError) as exc:
            raise StateError(f"cannot use state database {redact(uri)}: "
                             f"{str(exc).strip().splitlines()[0]}") from exc

    def _rows(self, query: str, params: Any) -> list[tuple[Any, ...]]:
        with self._db.transaction():
            return self._db.execute(query, params).fetchall()

    def validators(self, feed_urls: Sequence[str]) -> dict[str, Validators]:
        rows = self._rows(
            f"SELECT feed_url, etag, last_modified FROM {self._t['feed_validators']}"
            " WHERE feed_url = ANY(%s)", (list(feed_urls),),
        )
        return {url: Validators(etag, modified) for url, etag, modified in rows}

    def seen(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(list(ids)):
            rows = self._rows(
                f"SELECT id FROM {self._t['seen_articles']} WHERE id = ANY(%s)", (list(chunk),)
            )
            found.update(row[0] for row in rows)
        return found

    def committed_runs(self) -> set[str]:
        return {row[0] for row in self._rows(f"SELECT run_id FROM {self._t['runs']}", ())}

    def committed_windows(self, stream_id: str, labels: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(list(labels)):
            found.update(row[0] for row in self._rows(
                f"SELECT label FROM {self._t['stream_windows']}"
                " WHERE stream_id = %s AND label = ANY(%s)", (stream_id, list(chunk))))
        return found

    def commit(
        self, run_id: str, validators: Mapping[str, Validators], ids: Iterable[str],
        window: str | None = None,
    ) -> None:
        now = _now()
        id_list = list(ids)
        with self._db.transaction(), self._db.cursor() as cursor:
            if window is not None:
                cursor.execute(
                    f"INSERT INTO {self._t['stream_windows']} (stream_id, label, committed_at)"
                    " VALUES (%s, %s, %s) ON CONFLICT DO NOTHING", (run_id, window, now))
            upsert_by_copy(
                cursor, self._t["feed_validators"],
                ("feed_url", "etag", "last_modified", "updated_at"),
                ((url, v.etag, v.last_modified, now) for url, v in validators.items()),
                "ON CONFLICT (feed_url) DO UPDATE SET etag = excluded.etag,"
                " last_modified = excluded.last_modified, updated_at = excluded.updated_at")
            upsert_by_copy(
                cursor, self._t["seen_articles"], ("id", "run_id", "first_seen"),
                ((article_id, run_id, now) for article_id in id_list),
                "ON CONFLICT (id) DO NOTHING")
            cursor.execute(
                f"INSERT INTO {self._t['runs']} (run_id, records, committed_at)"
                " VALUES (%s, %s, %s) ON CONFLICT (run_id) DO UPDATE SET"
                f" records = {self._t['runs']}.records + excluded.records",
                (run_id, len(id_list), now),
            )

    def feed_health(self, feed_urls: Sequence[str] | None = None) -> dict[str, str]:
        if feed_urls is None:
            return dict(self._rows(
                f"SELECT feed_url, health::text FROM {self._t['feed_health']}", ()))
        found: dict[str, str] = {}
        for chunk in _chunks(list(feed_urls)):
            found.update(self._rows(
                f"SELECT feed_url, health::text FROM {self._t['feed_health']}"
                " WHERE feed_url = ANY(%s)", (list(chunk),)))
        return found

    def save_feed_health(self, rows: Mapping[str, str]) -> None:
        now = _now()
        with self._db.transaction(), self._db.cursor() as cursor:
            upsert_by_copy(
                cursor, self._t["feed_health"], ("feed_url", "health", "updated_at"),
                ((url, health, now) for url, health in rows.items()),
                "ON CONFLICT (feed_url) DO UPDATE SET health = excluded.health,"
                " updated_at = excluded.updated_at")

    def topic_counts(self, period: str, since: datetime, before: datetime
                     ) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        for topic, count in self._rows(
                f"SELECT topic, sum(count) FROM {self._t['topic_counts']}"
                " WHERE period = %s AND period_end > %s AND period_end < %s"
                " GROUP BY topic, period_end ORDER BY period_end", (period, since, before)):
            found.setdefault(topic, []).append(int(count))
        return found

    def save_topic_counts(self, period: str, end: datetime, counts: Mapping[str, int],
                          pane: int = 0) -> None:
        with self._db.transaction(), self._db.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {self._t['topic_counts']} (topic, period, period_end, pane, count)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (topic, period, period_end, pane)"
                " DO UPDATE SET count = excluded.count",
                [(topic, period, end, pane, n) for topic, n in counts.items()])

    def close(self) -> None:
        self._db.close()
