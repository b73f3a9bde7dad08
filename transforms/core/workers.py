"""What a Beam worker process's worker processes run: feeds parsed (ParseEntries) and pages
extracted (ExtractArticles), named here so that one pool serves both stages (see PooledFn in
transforms.core.background); and what its lane processes run. Imports no Beam, like the
processes themselves.
"""

from __future__ import annotations

from transforms.core.isolation import IsolationSettings, ProcessPool, ensure_fork_server, preload

# Named, not imported: only the worker processes import the parsing and extraction stack.
PARSE_FEED = "transforms.feeds.parse:parse_feed"
EXTRACT_ARTICLE = "transforms.extract.article:extract_article"
TARGETS = (PARSE_FEED, EXTRACT_ARTICLE)
# What the lane processes run (a batch run's polls: transforms.fetch.lane_processes).
POLL_IN_LANE = "transforms.feeds.request:poll_in_lane"
LANE_PROCESS = "transforms.fetch.lane_processes"
# Every module the fork server imports as it starts. It starts once per Beam worker process,
# for the first process of either kind, and only what it imported then is shared by every
# process it forks: the other kind would import its own at every start.
FORK_SERVER_IMPORTS = (*(target.partition(":")[0] for target in TARGETS),
                       POLL_IN_LANE.partition(":")[0], LANE_PROCESS)


def prepare_fork_server() -> None:
    """Have the fork server import FORK_SERVER_IMPORTS; before any worker or lane process
    starts."""
    preload(FORK_SERVER_IMPORTS)


def start_fork_server() -> None:
    """Start the fork server now, importing FORK_SERVER_IMPORTS (in its own process, while
    this one sets the run up): the first worker or lane process is then forked at once."""
    prepare_fork_server()
    ensure_fork_server()


def started_pool(isolation: IsolationSettings) -> ProcessPool:
    """A new pool whose processes are starting (in the background) while the stage that
    asked for it goes on fetching."""
    prepare_fork_server()
    pool = ProcessPool(TARGETS, isolation)
    pool.warm_up()
    return pool
