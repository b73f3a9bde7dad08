"""Fetching over HTTP: the one client (limits, address guard, retries, bounded decoding),
politeness per host, robots.txt, the base of the fetching DoFns, and FetchPages."""

from typing import TYPE_CHECKING

from transforms import lazy_exports

if TYPE_CHECKING:
    from transforms.fetch.http import (
        DEFAULT_USER_AGENT as DEFAULT_USER_AGENT,
        FetchError as FetchError,
        HttpClient as HttpClient,
        HttpSettings as HttpSettings,
        MiB as MiB,
        Response as Response,
        is_feed_content_type as is_feed_content_type,
        is_page_content_type as is_page_content_type,
        validate_url as validate_url,
    )
    from transforms.fetch.lane_processes import (
        HostDone as HostDone,
        LaneProcesses as LaneProcesses,
        LaneProcessLost as LaneProcessLost,
        Outcome as Outcome,
    )
    from transforms.fetch.pages import (
        FetchPages as FetchPages,
    )
    from transforms.fetch.polite import (
        DEFAULT_POLITENESS as DEFAULT_POLITENESS,
        HostGate as HostGate,
        HostLanes as HostLanes,
        Politeness as Politeness,
        host_key as host_key,
    )
    from transforms.fetch.polite_fetch import (
        BATCH_GROUPING as BATCH_GROUPING,
        FetchResources as FetchResources,
        Grouping as Grouping,
        PoliteFetchFn as PoliteFetchFn,
        fetch_grouped_by_host as fetch_grouped_by_host,
        wait_tallies as wait_tallies,
    )

__getattr__, __all__ = lazy_exports(__name__, __file__)
