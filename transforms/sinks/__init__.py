"""Sinks: URIs, column schemas derived from the record definition, and one writer per family
(JSON Lines, Parquet, PostgreSQL, Redis streams, BigQuery)."""

from typing import TYPE_CHECKING

from transforms import lazy_exports

if TYPE_CHECKING:
    from transforms.sinks.files import (
        record_ids_by_run as record_ids_by_run,
    )
    from transforms.sinks.uris import (
        DEFAULT_DEAD_LETTERS_TABLE as DEFAULT_DEAD_LETTERS_TABLE,
        DEFAULT_RECORDS_TABLE as DEFAULT_RECORDS_TABLE,
        Sink as Sink,
        SinkError as SinkError,
        parse_sink as parse_sink,
    )
    from transforms.sinks.windowed import (
        IntoWindows as IntoWindows,
        WriteSummaries as WriteSummaries,
        window_span as window_span,
    )
    from transforms.sinks.write import (
        PER_RUN as PER_RUN,
        Cut as Cut,
        WriteDeadLetters as WriteDeadLetters,
        WriteRecords as WriteRecords,
        prepare_sinks as prepare_sinks,
    )

__getattr__, __all__ = lazy_exports(__name__, __file__)
