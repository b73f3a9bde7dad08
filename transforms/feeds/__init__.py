"""Feeds: FetchFeeds (feed bytes, conditionally), ParseEntries (RSS and Atom with feedparser,
JSON Feed with our own reader) and the plain `parse_feed` behind it."""

from transforms.feeds.fetch import VALIDATORS, FetchFeeds, conditional_headers
from transforms.feeds.parse import FULL_TEXT_MIN_WORDS, ParsedFeed, ParseEntries, parse_feed

__all__ = [
    "FULL_TEXT_MIN_WORDS", "VALIDATORS", "FetchFeeds", "ParseEntries", "ParsedFeed",
    "conditional_headers", "parse_feed",
]
