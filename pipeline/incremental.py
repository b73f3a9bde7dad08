"""The driver's side of incremental batch runs: run ids, validators in before a run, and the
recovery of runs that wrote their records but died before committing their state.

The staging and commit of a run's state changes is `transforms.state.staging`.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime

from transforms.core import Feed
from transforms.sinks import record_ids_by_run
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
    orphans = {run_id: ids for run_id, ids in record_ids_by_run(out).items()
               if run_id not in committed}
    for run_id, ids in sorted(orphans.items()):
        log.warning("run %s wrote %d records but did not commit them; committing now",
                    run_id, len(ids))
        store.commit(run_id, {}, ids)
    return sorted(orphans)
