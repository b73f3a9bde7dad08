"""Sinks: URIs, column schemas derived from the record definition, and one writer per family
(JSON Lines, Parquet, PostgreSQL, Redis streams, BigQuery)."""

from transforms.sinks.files import record_ids_by_run
from transforms.sinks.uris import (
    DEFAULT_DEAD_LETTERS_TABLE,
    DEFAULT_RECORDS_TABLE,
    Sink,
    SinkError,
    parse_sink,
)
from transforms.sinks.write import WriteDeadLetters, WriteRecords, prepare_sinks

__all__ = [
    "DEFAULT_DEAD_LETTERS_TABLE", "DEFAULT_RECORDS_TABLE", "Sink", "SinkError",
    "WriteDeadLetters", "WriteRecords", "parse_sink", "prepare_sinks", "record_ids_by_run",
]
