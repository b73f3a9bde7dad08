"""Fetching over HTTP: the one client (limits, address guard, retries, bounded decoding),
politeness per host, robots.txt, the base of the fetching DoFns, and FetchPages."""

from transforms.fetch.http import (
    DEFAULT_USER_AGENT,
    FetchError,
    HttpClient,
    HttpSettings,
    MiB,
    Response,
    is_feed_content_type,
    is_page_content_type,
    validate_url,
)
from transforms.fetch.pages import FetchPages
from transforms.fetch.polite import DEFAULT_POLITENESS, HostGate, Politeness, host_key
from transforms.fetch.polite_fetch import PoliteFetchFn, fetch_grouped_by_host

__all__ = [
    "DEFAULT_POLITENESS", "DEFAULT_USER_AGENT", "FetchError", "FetchPages", "HostGate",
    "HttpClient", "HttpSettings", "MiB", "PoliteFetchFn", "Politeness", "Response",
    "fetch_grouped_by_host", "host_key", "is_feed_content_type", "is_page_content_type",
    "validate_url",
]
