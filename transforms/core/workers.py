"""What a Beam worker process's worker processes run: feeds parsed (ParseEntries) and pages
extracted (ExtractArticles), named here so that one pool serves both stages (see PooledFn in
transforms.core.background). Imports no Beam, like the workers themselves.
"""

from __future__ import annotations

from transforms.core.isolation import IsolationSettings, ProcessPool

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
