"""The driver's side of incremental runs: validators in before a run, state committed after it.

A run stages its state changes (ids written, feed validators) as files beside its outputs; only
once the pipeline has finished, and so every output is durably written, does `commit_staged`
move them into the state store in one transaction. A run that dies before that commits nothing.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime

from apache_beam.io.filesystems import FileSystems

from transforms.records import Feed
from transforms.sinks import JSONL_SUFFIX, RECORDS_PREFIX, STAGED_IDS, STAGED_VALIDATORS
from transforms.state import StateStore, Validators

log = logging.getLogger(__name__)

STAGING_FOLDER = ".newsbeam-staging"
_RUN_FILE = re.compile(
    rf"^{RECORDS_PREFIX}-(?P<run_id>\d{{8}}T\d{{9}}Z)-\d+-of-\d+{re.escape(JSONL_SUFFIX)}$"
)


def new_run_id(now: datetime | None = None) -> str:
    """A sortable run id from the start time, to the millisecond: 20261129T131846123Z."""
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z"


def staging_dir(out: str, run_id: str) -> str:
    return FileSystems.join(out, STAGING_FOLDER, run_id)


def with_validators(feeds: tuple[Feed, ...], store: StateStore) -> tuple[Feed, ...]:
    """The feeds, each carrying the validators its last full fetch returned (if any)."""
    known = store.validators([feed.url for feed in feeds])
    out = []
    for feed in feeds:
        validators = known.get(feed.url, Validators())
        out.append(Feed(feed.url, feed.name, feed.tags, feed.index, validators.etag,
                        validators.last_modified))
    return tuple(out)


def commit_staged(store: StateStore, run_id: str, staging: str) -> int:
    """Commit what the finished run staged; returns how many article ids were committed."""
    ids = [line.strip() for line in _lines(FileSystems.join(staging, STAGED_IDS) + "*")]
    validators = {}
    for line in _lines(FileSystems.join(staging, STAGED_VALIDATORS) + "*"):
        item = json.loads(line)
        validators[item["feed_url"]] = Validators(item["etag"], item["last_modified"])
    store.commit(run_id, validators, [i for i in ids if i])
    FileSystems.delete([staging])
    return len(ids)


def recover_unfinished_runs(out: str, store: StateStore) -> list[str]:
    """Commit the ids in record files of runs that wrote them but died before committing.

    Those records are durable output; without this, the next run would fetch and write the
    same articles again. Their feed validators are lost, which only costs a full feed fetch.
    """
    committed = store.committed_runs()
    orphans: dict[str, list[str]] = {}
    for path in _matches(FileSystems.join(out, f"{RECORDS_PREFIX}-*{JSONL_SUFFIX}")):
        match = _RUN_FILE.match(path.rsplit("/", 1)[-1])
        if match and match["run_id"] not in committed:
            orphans.setdefault(match["run_id"], []).append(path)
    for run_id, paths in sorted(orphans.items()):
        ids = [json.loads(line)["id"] for path in paths for line in _read_lines(path)]
        log.warning("run %s wrote %d records but did not commit them; committing now",
                    run_id, len(ids))
        store.commit(run_id, {}, ids)
    return sorted(orphans)


def discard_stale_staging(out: str) -> None:
    """Staged changes of runs that never finished: their work is redone, so drop them."""
    stale = FileSystems.join(out, STAGING_FOLDER)
    if FileSystems.exists(stale):
        FileSystems.delete([stale])


def _matches(pattern: str) -> list[str]:
    results = FileSystems.match([pattern])
    return sorted(metadata.path for result in results for metadata in result.metadata_list)


def _lines(pattern: str) -> Iterator[str]:
    for path in _matches(pattern):
        yield from _read_lines(path)


def _read_lines(path: str) -> Iterator[str]:
    with FileSystems.open(path) as handle:
        for raw in handle:
            line = raw.decode("utf-8").strip()
            if line:
                yield line
