"""Feeds: FetchFeeds (a batch run's feed bytes, conditionally), PollFeeds (a stream's polls,
with each feed's schedule in keyed state), ParseEntries (RSS and Atom with feedparser, JSON Feed
with our own reader, in the worker processes) and the plain functions behind them."""

from typing import TYPE_CHECKING

from transforms import lazy_exports

if TYPE_CHECKING:
    from transforms.feeds.fetch import (
        VALIDATORS as VALIDATORS,
        FetchedFeeds as FetchedFeeds,
        FetchFeeds as FetchFeeds,
    )
    from transforms.feeds.parse import (
        FULL_TEXT_MIN_WORDS as FULL_TEXT_MIN_WORDS,
        parse_feed as parse_feed,
    )
    from transforms.feeds.parse_entries import ParseEntries as ParseEntries
    from transforms.feeds.parsed import ParsedFeed as ParsedFeed, polled as polled
    from transforms.feeds.poll import (
        FeedState as FeedState,
        FeedStatesCoder as FeedStatesCoder,
        PollClock as PollClock,
        PollFeeds as PollFeeds,
        after_poll as after_poll,
        poll_shard as poll_shard,
        stale_tick as stale_tick,
        tick_interval as tick_interval,
    )
    from transforms.feeds.request import (
        FEED_ACCEPT as FEED_ACCEPT,
        FeedPoll as FeedPoll,
        conditional_headers as conditional_headers,
        poll_feed as poll_feed,
        poll_in_lane as poll_in_lane,
    )
    from transforms.feeds.schedule import (
        max_age as max_age,
        next_poll_in as next_poll_in,
        poll_time as poll_time,
        rss_ttl as rss_ttl,
    )

__getattr__, __all__ = lazy_exports(__name__, __file__)
