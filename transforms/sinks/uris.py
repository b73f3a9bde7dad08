"""Sink URIs: what `--sink` and `--dead-letters` accept, checked before anything is fetched.

    jsonl:DIR                                         JSON Lines files (the default)
    parquet:DIR                                       Parquet files
    postgresql://USER@HOST:PORT/DB?table=NAME         a table, upserted on id
    redis://HOST:PORT/DB?stream=NAME[&maxlen=N]       a Redis stream for live consumers
    bigquery:PROJECT:DATASET.TABLE                    BigQuery, for Dataflow users
"""

from __future__ import annotations

import dataclasses
import re
from urllib.parse import parse_qs, urlsplit, urlunsplit

from transforms.core import redact

DEFAULT_MAXLEN = 100_000
DEFAULT_RECORDS_TABLE = "newsbeam_articles"
DEFAULT_DEAD_LETTERS_TABLE = "newsbeam_dead_letters"
DEFAULT_FEED_HEALTH_TABLE = "newsbeam_feed_health"
DEFAULT_ALERTS_TABLE = "newsbeam_alerts"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_BIGQUERY = re.compile(
    r"^([a-z][a-z0-9-]{4,28}[a-z0-9])[:.]([A-Za-z0-9_]{1,1024})\.([A-Za-z0-9_-]{1,1024})$"
)


class SinkError(Exception):
    """A sink that cannot be used: a bad URI, an unreachable server, a refused login."""


@dataclasses.dataclass(frozen=True)
class Sink:
    """One parsed sink URI."""

    family: str  # jsonl, parquet, postgresql, redis or bigquery
    uri: str  # as given (with any password: never print it, use `shown`)
    target: str  # folder, connection string without newsbeam's own query options, or table
    table: str | None = None  # PostgreSQL table, or BigQuery PROJECT:DATASET.TABLE
    stream: str | None = None  # Redis stream
    maxlen: int = DEFAULT_MAXLEN  # Redis stream cap (approximate trimming)

    @property
    def shown(self) -> str:
        return redact(self.uri)


def parse_sink(uri: str, *, default_table: str) -> Sink:
    """Parse a sink URI, or raise SinkError with one line saying what is wrong."""
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    if scheme in ("jsonl", "parquet"):
        folder = uri.split(":", 1)[1]
        if not folder:
            raise SinkError(f"sink {uri!r}: {scheme}: needs a folder, e.g. {scheme}:out/")
        return Sink(scheme, uri, folder)
    if scheme in ("postgresql", "postgres"):
        return _postgres(uri, default_table)
    if scheme in ("redis", "rediss"):
        return _redis(uri)
    if scheme == "bigquery":
        target = uri.split(":", 1)[1]
        if not _BIGQUERY.match(target):
            raise SinkError(f"sink {uri!r}: expected bigquery:PROJECT:DATASET.TABLE")
        return Sink("bigquery", uri, target, table=target)
    raise SinkError(
        f"sink {redact(uri)!r}: unknown kind; use one of jsonl:DIR, parquet:DIR, "
        "postgresql://USER@HOST:PORT/DB?table=NAME, redis://HOST:PORT/DB?stream=NAME, "
        "bigquery:PROJECT:DATASET.TABLE"
    )


def _postgres(uri: str, default_table: str) -> Sink:
    parts = urlsplit(uri)
    options = parse_qs(parts.query)
    table = options.pop("table", [default_table])[0]
    if not _NAME.match(table):
        raise SinkError(f"sink {redact(uri)!r}: table {table!r} is not a plain SQL name")
    if not parts.hostname or not parts.path.strip("/"):
        raise SinkError(f"sink {redact(uri)!r}: expected postgresql://USER@HOST:PORT/DB")
    conninfo = urlunsplit(parts._replace(
        query="&".join(f"{k}={v[0]}" for k, v in options.items())))
    return Sink("postgresql", uri, conninfo, table=table)


def _redis(uri: str) -> Sink:
    parts = urlsplit(uri)
    options = parse_qs(parts.query)
    stream = options.pop("stream", [None])[0]
    if not stream:
        raise SinkError(
            f"sink {redact(uri)!r}: name the stream: redis://HOST:PORT/DB?stream=NAME")
    try:
        maxlen = int(options.pop("maxlen", [str(DEFAULT_MAXLEN)])[0])
    except ValueError:
        raise SinkError(f"sink {redact(uri)!r}: maxlen must be a whole number") from None
    if maxlen < 1:
        raise SinkError(f"sink {redact(uri)!r}: maxlen must be at least 1")
    if options:
        raise SinkError(f"sink {redact(uri)!r}: unknown option {sorted(options)[0]!r}")
    target = urlunsplit(parts._replace(query=""))
    return Sink("redis", uri, target, stream=stream, maxlen=maxlen)
