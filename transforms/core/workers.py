"""A Beam worker process's worker processes: one pool for its isolation settings, shared by the
two stages whose work runs there (ParseEntries parses feeds in it, ExtractArticles extracts
pages), so a run starts one set of processes, not one per stage.
"""

from __future__ import annotations

from transforms.core.isolation import IsolationSettings, ProcessPool
from transforms.core.shared import per_process

# Named, not imported: only the worker processes import the parsing and extraction stack.
PARSE_FEED = "transforms.feeds.parse:parse_feed"
EXTRACT_ARTICLE = "transforms.extract.article:extract_article"
TARGETS = (PARSE_FEED, EXTRACT_ARTICLE)


def started_pool(isolation: IsolationSettings) -> ProcessPool:
    """A new pool whose processes are starting (in the background) while the stage that
    asked for it goes on fetching."""
    pool = ProcessPool(TARGETS, isolation)
    pool.warm_up()
    return pool


def worker_pool(isolation: IsolationSettings) -> ProcessPool:
    """This process's pool for `isolation`, started by the first stage that has work for it (a
    run with nothing to parse or extract starts no process). Keep it from setup() or first use
    to teardown() and let go of it there without closing it (see per_process)."""
    return per_process(("worker processes", isolation), lambda: started_pool(isolation))
