"""The driver's side of incremental runs and streams: run and stream ids, validators in before
a run, and the recovery of runs and streams that wrote their records but died before
committing their state.

The staging and commit of a run's state changes is `transforms.state.staging`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from datetime import UTC, datetime

from apache_beam.io.filesystems import FileSystems

from transforms.core import Feed, is_permanent_reason, redact
from transforms.sinks import (
    DEAD_LETTERS_PREFIX,
    RECORDS_PREFIX,
    FiringFiles,
    Sink,
    firing_files,
    leftover_temporaries,
    present_in_sink,
    read_rows,
    record_files_by_run,
    record_ids,
    run_prefix,
)
from transforms.state import StateStore

log = logging.getLogger(__name__)


def new_run_id(now: datetime | None = None) -> str:
    """A sortable run id from the start time, to the millisecond: 20261129T131846123Z."""
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z"


def with_validators(feeds: tuple[Feed, ...], store: StateStore) -> tuple[Feed, ...]:
    """The feeds, each carrying the validators its last full fetch returned (if any)."""
    known = store.validators([feed.url for feed in feeds])
    return tuple(
        dataclasses.replace(feed, validators=known[feed.url]) if feed.url in known else feed
        for feed in feeds
    )


def recover_unfinished_runs(out: str, store: StateStore) -> list[str]:
    """Commit the ids in JSON Lines record files of runs that wrote them but died before
    committing.

    Those records are durable output; without this, the next run would fetch and write the
    same articles again. Their feed validators are lost, which only costs a full feed fetch.
    """
    committed = store.committed_runs()
    # Only the files of runs not committed are read: a folder a schedule has written to for
    # months holds every record since.
    orphans = {run_id: record_ids(paths) for run_id, paths in record_files_by_run(out).items()
               if run_id not in committed}
    for run_id, ids in sorted(orphans.items()):
        log.warning("run %s wrote %d records but did not commit them; committing now",
                    run_id, len(ids))
        store.commit(run_id, {}, ids)
    return sorted(orphans)


FILE_FAMILIES = ("jsonl", "parquet")
_SUFFIXES = {"jsonl": ".jsonl", "parquet": ".parquet"}
_STREAM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def stream_identity(given: str | None, out: str, state_uri: str | None) -> str:
    """A stream's id: `given` (--stream-id), else one derived from --out and --state (its
    password left out), the same at every launch, so a restarted stream finds its own files
    whatever feeds it polls now."""
    if given is not None:
        if not _STREAM_ID.match(given):
            raise ValueError(f"--stream-id {given!r}: use up to 64 letters, digits, '.', '_'"
                             " and '-', starting with a letter or digit")
        return given
    key = "\n".join([out, redact(state_uri) if state_uri else "none"])
    return "stream-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


@dataclasses.dataclass(frozen=True)
class Recovered:
    """What recover_stream_windows did: window firings committed, and rolled back."""

    committed: tuple[str, ...] = ()
    rolled_back: tuple[str, ...] = ()


def recover_stream_windows(stream_id: str, record_sinks: tuple[Sink, ...],
                           dead_letter_sink: Sink, store: StateStore) -> Recovered:
    """Make a stream's window files and its state store agree again, before it starts.

    A stream commits a window's ids once every sink has written the window; killed in between,
    it leaves files the store knows nothing of, and would write their articles again. Each
    firing whose files are complete in every file sink of the records, and whose ids every
    PostgreSQL and Redis sink holds, is committed now (with the permanent failures among its
    dead letters). One that some sink lacks, or has only in part, was not written everywhere:
    its files are removed and its articles fetched and written again (PostgreSQL and Redis
    take them again without a second copy). BigQuery cannot be asked cheaply and is taken to
    have what the files have.
    """
    record_files = [
        firing_files(sink.target, run_prefix(RECORDS_PREFIX, stream_id), _SUFFIXES[sink.family])
        for sink in record_sinks if sink.family in FILE_FAMILIES]
    letter_files = (
        firing_files(dead_letter_sink.target, run_prefix(DEAD_LETTERS_PREFIX, stream_id),
                     _SUFFIXES[dead_letter_sink.family])
        if dead_letter_sink.family in FILE_FAMILIES else {})
    file_sinks = [(sink, RECORDS_PREFIX) for sink in record_sinks] + [
        (dead_letter_sink, DEAD_LETTERS_PREFIX)]
    leftovers = [path for sink, prefix in file_sinks if sink.family in FILE_FAMILIES
                 for path in leftover_temporaries(sink.target, run_prefix(prefix, stream_id))]
    if leftovers:
        FileSystems.delete(leftovers)
    labels = set(letter_files).union(*record_files)
    committed, rolled_back = [], []
    for label in sorted(labels - store.committed_windows(stream_id, sorted(labels))):
        present = [files[label] for files in record_files if label in files]
        ids = _written_everywhere(present, len(record_files), record_sinks)
        if ids is None:
            FileSystems.delete([path for files in present for path in files.paths])
            rolled_back.append(label)
            log.warning("stream %s: window %s was not written to every sink before the stream"
                        " stopped; its files are removed and its articles will be written"
                        " again", stream_id, label)
            ids = []
        letters = letter_files.get(label)
        if letters is not None and letters.complete:
            ids += [row["article_id"] for path in letters.paths for row in read_rows(path)
                    if row["article_id"] and is_permanent_reason(row["reason"],
                                                                 row["error_type"])]
        elif letters is not None:
            FileSystems.delete(list(letters.paths))
        store.commit(stream_id, {}, ids, window=label)
        committed.append(label)
        if label not in rolled_back:
            log.warning("stream %s: window %s was written but not committed before the stream"
                        " stopped; committed its %d ids now", stream_id, label, len(ids))
    return Recovered(tuple(committed), tuple(rolled_back))


def _written_everywhere(present: list[FiringFiles], file_sinks: int,
                        sinks: tuple[Sink, ...]) -> list[str] | None:
    """The record ids of a window firing whose files are `present` (in `file_sinks` folders
    at most), if every sink has all of them; None if one lacks some."""
    if not present:
        return []  # the firing had dead letters only
    if len(present) < file_sinks or not all(files.complete for files in present):
        return None
    ids = [row["id"] for path in present[0].paths for row in read_rows(path)]
    for sink in sinks:
        held = present_in_sink(sink, ids)
        if held is not None and len(held) < len(set(ids)):
            return None
    return ids
