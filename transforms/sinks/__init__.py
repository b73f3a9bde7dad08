"""Sinks: URIs, column schemas derived from the record definition, and one writer per family
(JSON Lines, Parquet, PostgreSQL, Redis streams, BigQuery)."""

from typing import TYPE_CHECKING

from transforms import lazy_exports

if TYPE_CHECKING:
    from transforms.sinks.files import (
        ALERTS_PREFIX as ALERTS_PREFIX,
        DEAD_LETTERS_PREFIX as DEAD_LETTERS_PREFIX,
        FEED_HEALTH_PREFIX as FEED_HEALTH_PREFIX,
        RECORDS_PREFIX as RECORDS_PREFIX,
        record_files_by_run as record_files_by_run,
        record_ids as record_ids,
        run_prefix as run_prefix,
    )
    from transforms.sinks.uris import (
        DEFAULT_ALERTS_TABLE as DEFAULT_ALERTS_TABLE,
        DEFAULT_DEAD_LETTERS_TABLE as DEFAULT_DEAD_LETTERS_TABLE,
        DEFAULT_FEED_HEALTH_TABLE as DEFAULT_FEED_HEALTH_TABLE,
        DEFAULT_RECORDS_TABLE as DEFAULT_RECORDS_TABLE,
        Sink as Sink,
        SinkError as SinkError,
        parse_sink as parse_sink,
    )
    from transforms.sinks.windowed import (
        FiringFiles as FiringFiles,
        IntoWindows as IntoWindows,
        WriteSummaries as WriteSummaries,
        firing_files as firing_files,
        leftover_temporaries as leftover_temporaries,
        read_rows as read_rows,
    )
    from transforms.sinks.write import (
        PER_RUN as PER_RUN,
        Cut as Cut,
        WriteAlerts as WriteAlerts,
        WriteDeadLetters as WriteDeadLetters,
        WriteFeedHealth as WriteFeedHealth,
        WriteRecords as WriteRecords,
        prepare_sinks as prepare_sinks,
        present_in_sink as present_in_sink,
    )

__getattr__, __all__ = lazy_exports(__name__, __file__)
