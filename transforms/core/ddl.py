"""Tables created by several processes at once, safely.

PostgreSQL's CREATE TABLE IF NOT EXISTS is not safe against another session creating the same
table at the same moment: one of them fails with a unique violation on pg_type. Every newsbeam
process that creates tables (state stores, PostgreSQL sinks) first takes one transaction-level
advisory lock, so the others wait for it and then find the tables there.
"""

from __future__ import annotations

from typing import Any

# One key for all of newsbeam's table creation in a database; released at the end of the
# transaction that took it.
TABLE_CREATION_LOCK = 0x6E657773_6265616D  # "newsbeam"


def lock_table_creation(connection: Any) -> None:
    """Within `connection`'s current transaction: wait until no other newsbeam process is
    creating tables in this database."""
    connection.execute("SELECT pg_advisory_xact_lock(%s)", (TABLE_CREATION_LOCK,))
