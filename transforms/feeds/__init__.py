"""Feeds: FetchFeeds (feed bytes, conditionally), ParseEntries (RSS and Atom with feedparser,
JSON Feed with our own reader) and the plain `parse_feed` behind it."""

from typing import TYPE_CHECKING

from transforms import lazy_exports

if TYPE_CHECKING:
    from transforms.feeds.fetch import (
        VALIDATORS as VALIDATORS,
        FetchFeeds as FetchFeeds,
        conditional_headers as conditional_headers,
    )
    from transforms.feeds.parse import (
        FULL_TEXT_MIN_WORDS as FULL_TEXT_MIN_WORDS,
        ParsedFeed as ParsedFeed,
        ParseEntries as ParseEntries,
        parse_feed as parse_feed,
    )

__getattr__, __all__ = lazy_exports(__name__, __file__)
