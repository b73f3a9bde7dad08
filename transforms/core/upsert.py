"""Many rows into a PostgreSQL table at once, each replacing or yielding to the row its key
already has: COPY'd into a temporary staging table, then merged with one INSERT ... SELECT ...
ON CONFLICT. The PostgreSQL sink and state store both write this way: one COPY and one
statement cost far less time and client CPU than an INSERT per row (benchmarks/README.md)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def upsert_by_copy(cursor: Any, table: str, columns: Sequence[str],
                   rows: Iterable[Sequence[Any]], on_conflict: str,
                   distinct_on: str | None = None) -> None:
    """Within `cursor`'s transaction, insert `rows` (values of `columns`, in order) into
    `table`; `on_conflict` ("ON CONFLICT ...") decides what becomes of a row whose key is there
    already. With `distinct_on` (a key column), one row per key goes in, where a batch might
    hold a key twice (DO UPDATE refuses to touch a row twice in one statement)."""
    names = ", ".join(columns)
    # One per table and connection, emptied by each commit (a rollback discards it too).
    # Quoted, with hyphens: no unquoted table name newsbeam makes can be the staging table's,
    # which would hide it.
    staged = f'"newsbeam-staging-{table}"'
    cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {staged}"
                   f" (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
    with cursor.copy(f"COPY {staged} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    distinct = f"DISTINCT ON ({distinct_on}) " if distinct_on else ""
    cursor.execute(f"INSERT INTO {table} ({names}) SELECT {distinct}{names} FROM {staged}"
                   f" {on_conflict}")
