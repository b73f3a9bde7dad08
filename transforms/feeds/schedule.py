"""When a stream polls a feed next: its own interval, never sooner than its server asks, and
less often while it keeps failing.

A server says how fresh its answer stays in Cache-Control (`max-age`), an RSS feed in its
channel's `<ttl>` (minutes), and an overloaded server in Retry-After (429, 503); each is a floor
under the wait. A feed that fails is polled half as often after each failure in a row, up to
MAX_BACKOFF times less often, and at its own interval again once it answers.
"""

from __future__ import annotations

import re

MAX_BACKOFF = 32  # a failing feed is polled at least this much less often than its interval
MAX_HINT = 7 * 86400.0  # a server's hint is honoured up to a week (a typo should not mute a feed)

_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|[,\s])(?:no-cache|no-store)(?:$|[,\s])", re.IGNORECASE)
# The channel's <ttl> comes before its items; only the head of the feed is looked at.
_TTL = re.compile(rb"<ttl>\s*(\d{1,6})\s*</ttl>", re.IGNORECASE)
_HEAD_BYTES = 64 * 1024


def max_age(cache_control: str | None) -> float | None:
    """Seconds a response stays fresh according to its Cache-Control header, if it says."""
    if not cache_control or _NO_CACHE.search(cache_control):
        return None
    match = _MAX_AGE.search(cache_control)
    return float(match.group(1)) if match else None


def rss_ttl(body: bytes) -> float | None:
    """An RSS channel's <ttl> (minutes its feed may be cached), in seconds, if it has one."""
    head = body[:_HEAD_BYTES]
    item = head.find(b"<item")
    match = _TTL.search(head, 0, item if item >= 0 else len(head))
    return float(match.group(1)) * 60 if match else None


def next_poll_in(interval: float, *, failures: int = 0, hints: tuple[float | None, ...] = ()
                 ) -> float:
    """Seconds until a feed's next poll: its interval, doubled for every failure in a row (up to
    MAX_BACKOFF times), and no sooner than any hint the server gave (up to MAX_HINT)."""
    return poll_wait(interval, failures=failures, hints=hints)[0]


def poll_wait(interval: float, *, failures: int = 0, hints: tuple[float | None, ...] = ()
              ) -> tuple[float, str]:
    """`next_poll_in`, and what set it: "config" (the feed's interval), "backoff" (failures in
    a row) or "server" (a hint it gave)."""
    wait = interval * min(2 ** failures, MAX_BACKOFF)
    reason = "backoff" if failures else "config"
    for hint in hints:
        if hint and min(hint, MAX_HINT) > wait:
            wait, reason = min(hint, MAX_HINT), "server"
    return wait, reason


def poll_time(tick: float, now: float, tick_interval: float) -> float:
    """The time a stream's poll counts from, when its tick (of time `tick`) is polled at `now`
    by the wall clock: the tick's own time, so that the tick an interval later finds the feed
    due however its arrival jitters; but at most half a tick before `now`, so that after a
    stall the ticks an impulse still owes do not find the feed due again at once."""
    return max(tick, now - tick_interval / 2)
