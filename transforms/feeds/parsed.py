"""What parsing one feed found (ParsedFeed), and the poll that fetched it, told what that was.

Apart from transforms.feeds.parse, which imports feedparser: the Beam process handles parsed
feeds without it (the worker processes parse them).
"""

from __future__ import annotations

import dataclasses

from transforms.core import DeadLetter, Entry, PollObservation


@dataclasses.dataclass(frozen=True)
class ParsedFeed:
    """What one feed body yielded: its title, its entries, and what could not be used."""

    title: str | None
    entries: tuple[Entry, ...]
    dead_letters: tuple[DeadLetter, ...]
    bozo_reason: str | None  # why feedparser found the feed ill-formed, if it did
    bozo_type: str | None  # the exception type feedparser reported, e.g. SAXParseException


def polled(poll: PollObservation, parsed: ParsedFeed) -> PollObservation:
    """A full answer's poll with what parsing found: its entries, the feed's own title where
    the feeds file gave none, and a feed that yielded nothing usable counted as failed."""
    unusable = [letter.reason for letter in parsed.dead_letters if letter.subject == "feed"]
    poll = dataclasses.replace(poll, entries=len(parsed.entries),
                               feed_title=poll.feed_title or parsed.title)
    if unusable:
        poll = dataclasses.replace(poll, outcome="failed", reason=unusable[0])
    return poll
