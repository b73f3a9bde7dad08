"""The PostgreSQL sink: a table made from the record definition, filled by batched upserts.

Rows are keyed by `id` (a record's article id, a dead letter's key): each batch is upserted by
COPY (transforms.core.upsert_by_copy) with ON CONFLICT (id) DO UPDATE, so a retried bundle or
the same feeds run twice leave the same rows, at a good share of a plain COPY's speed.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import apache_beam as beam

from transforms.core import (
    SCHEMA_VERSION,
    Composite,
    Record,
    SecretError,
    lock_table_creation,
    plain_values,
    upsert_by_copy,
    with_secret_password,
)
from transforms.sinks.schema import postgres_columns
from transforms.sinks.uris import Sink, SinkError

BATCH_SIZE = 1000
_COMMENT = "newsbeam schema_version="


def _connect(sink: Sink) -> Any:
    import psycopg  # imported here: only runs that write to PostgreSQL need the driver

    try:
        return psycopg.connect(with_secret_password(sink.target), connect_timeout=10,
                               autocommit=False)
    except (psycopg.Error, SecretError) as exc:
        raise SinkError(f"sink {sink.shown}: cannot connect: {_first_line(exc)}") from None


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def present_in_table(sink: Sink, ids: Sequence[str]) -> set[str]:
    """Which of `ids` the sink's table holds."""
    with _connect(sink) as connection:
        return {row[0] for row in connection.execute(
            f"SELECT id FROM {sink.table} WHERE id = ANY(%s)", (list(ids),)).fetchall()}


def prepare_table(sink: Sink, element: type = Record) -> None:
    """Create the table if it is missing, or check that an existing one has this layout.

    Fails with SinkError (one line, naming the migration) rather than mid-run.
    """
    assert sink.table is not None
    columns = postgres_columns(element)
    with _connect(sink) as connection:
        found = connection.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
            " AND table_schema = current_schema()", (sink.table,),
        ).fetchall()
        if not found:
            _create(connection, sink.table, columns, element)
            return
        comment = connection.execute(
            "SELECT obj_description(to_regclass(%s), 'pg_class')", (sink.table,)
        ).fetchone()[0] or ""
        version = comment.removeprefix(_COMMENT) if comment.startswith(_COMMENT) else "none"
        missing = [c for c in columns if c[0] not in {row[0] for row in found}]
        if missing or version != str(SCHEMA_VERSION):
            statements = [f"ALTER TABLE {sink.table} ADD COLUMN {name} {sql}"
                          for name, sql, _ in missing]
            if "id" in {name for name, _, _ in missing}:  # dead-letter tables before keys
                statements += [f"UPDATE {sink.table} SET id = md5(ctid::text || random()::text)",
                               f"ALTER TABLE {sink.table} ADD PRIMARY KEY (id)"]
            statements.append(f"COMMENT ON TABLE {sink.table} IS '{_COMMENT}{SCHEMA_VERSION}'")
            migration = "; ".join(statements)
            raise SinkError(
                f"sink {sink.shown}: table {sink.table} has the layout of newsbeam schema "
                f"version {version}, this newsbeam writes version {SCHEMA_VERSION}; migrate it "
                f"with: {migration}"
            )


def _create(connection: Any, table: str, columns: Sequence[tuple[str, str, bool]],
            element: type) -> None:
    definitions = ", ".join(
        f"{name} {sql}{'' if nullable else ' NOT NULL'}" for name, sql, nullable in columns
    )
    with connection.transaction():
        lock_table_creation(connection)
        connection.execute(f"CREATE TABLE IF NOT EXISTS {table} ({definitions}, PRIMARY KEY (id))")
        connection.execute(f"COMMENT ON TABLE {table} IS '{_COMMENT}{SCHEMA_VERSION}'")
        if element is Record:
            connection.execute(
                f"CREATE INDEX IF NOT EXISTS {table}_published_at ON {table} (published_at)")
            connection.execute(
                f"CREATE INDEX IF NOT EXISTS {table}_topic_names ON {table} USING gin"
                " (topic_names)")


def table_rows(elements: Iterable[Any]) -> Iterator[tuple[Any, ...]]:
    """Column values in table order (topics as JSON text, plus topic names for records)."""
    for element in elements:
        row = plain_values(element)
        if "topics" in row:
            row["topic_names"] = [topic["name"] for topic in row["topics"]]
            row["topics"] = json.dumps(row["topics"], ensure_ascii=False)
        yield tuple(row.values())


def write_batch(connection: Any, table: str, elements: Sequence[Any], element: type) -> None:
    """Write one batch of records or dead letters in one transaction, upserted on id."""
    names = [name for name, _, _ in postgres_columns(element)]
    updates = ", ".join(f"{name} = excluded.{name}" for name in names if name != "id")
    with connection.transaction(), connection.cursor() as cursor:
        # One row per id: a batch hardly ever holds one id twice (DedupEntries, one dead letter
        # per lost input and stage), but the upsert must not depend on that.
        upsert_by_copy(cursor, table, names, table_rows(elements),
                       f"ON CONFLICT (id) DO UPDATE SET {updates}", distinct_on="id")


@dataclasses.dataclass(eq=False)
class _WriteBatches(beam.DoFn):
    sink: Sink
    element: type
    _connection: Any = dataclasses.field(default=None, init=False, repr=False)

    def setup(self) -> None:
        self._connection = _connect(self.sink)

    def teardown(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def process(self, batch: list[Any]) -> Iterator[int]:
        import psycopg

        assert self.sink.table is not None
        try:
            write_batch(self._connection, self.sink.table, batch, self.element)
        except psycopg.OperationalError as error:  # the server went away: the run fails
            raise SinkError(f"sink {self.sink.shown}: lost the connection while writing:"
                            f" {_first_line(error)}") from None
        yield len(batch)


@dataclasses.dataclass(eq=False)
class WriteToPostgres(Composite):
    """Records or dead letters into a PostgreSQL table, upserted on id, in batches.
    Call `prepare_table` first (the driver does, before fetching anything)."""

    sink: Sink
    element: type = Record

    def expand(self, elements: beam.PCollection) -> beam.PCollection:
        return (
            elements
            | "Batch" >> batches(BATCH_SIZE)
            | "Upsert" >> beam.ParDo(_WriteBatches(self.sink, self.element))
        )


def batches(size: int) -> beam.PTransform:
    """Batches of up to `size` elements, each a round trip (a transaction, for PostgreSQL).
    Fixed-size: adaptive batching starts at one element. A batch never outlives its bundle, so
    in a stream records reach the database as their bundle ends (seconds, on a streaming
    runner); no processing-time timer is involved, which not every runner handles."""
    return beam.BatchElements(min_batch_size=size, max_batch_size=size)
