"""The health of each feed, kept across runs and polls: what its polls answered, what it brought,
and a class people can sort by (`healthy`, `quiet`, `failing`, `dead`).

Every poll of a feed becomes a `PollObservation` (the fetch stage's; parsing completes a full
answer's with its entries), and each run or stream window folds a feed's observations and the
new articles it wrote into the feed's last `FeedHealth` (`updated`). The rule that classes
a feed (`classify`) reads only that row and the time, so a batch run and a stream class a feed
the same way:

- `dead`: the last poll answered 404 or 410, or the feed has failed every poll for DEAD_AFTER;
- `failing`: its last FAILING_AFTER polls or more failed;
- `quiet`: no new article for QUIET_FACTOR times its usual gap between new articles (at least
  QUIET_AT_LEAST; the gap is known once three polls brought articles, before that
  QUIET_UNKNOWN_GAP), or none at all in QUIET_AT_LEAST since it was first polled;
- `healthy`: anything else.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from transforms.core import FeedHealthRow, PollObservation

HOUR = 3600.0
DAY = 86400.0
KEPT_HOURS = 7 * 24 + 1  # new articles per hour, for the last day's and week's counts
FAILING_AFTER = 3  # failed polls in a row
DEAD_AFTER = 7 * DAY  # failing without a break for this long
GONE_STATUSES = frozenset({404, 410})
QUIET_FACTOR = 4.0
QUIET_AT_LEAST = DAY
KEPT_POLLS = 20  # entry counts of the last polls with a full answer, for the median
KEPT_ARRIVALS = 20  # the last polls that brought new articles, for the usual gap
KEPT_PERIODS = 8  # the runs or stream panes a row remembers having folded in
QUIET_UNKNOWN_GAP = 7 * DAY  # quiet after this without a new article, before a usual gap
CLASSES = ("healthy", "quiet", "failing", "dead")


@dataclasses.dataclass(frozen=True)
class FeedHealth:
    """One feed's row: its polls and articles so far, and its class as of `updated_at`."""

    feed_url: str
    updated_at: float
    first_polled: float
    feed_title: str | None = None
    last_poll: float | None = None
    last_success: float | None = None
    last_200: float | None = None
    last_304: float | None = None
    consecutive_failures: int = 0
    failing_since: float | None = None  # the first failure of the current run of failures
    last_status: int | None = None
    last_failure_reason: str | None = None
    last_failure_at: float | None = None
    response_seconds: float | None = None  # of the last answered poll
    interval: float | None = None
    interval_reason: str = "config"
    recent_entries: tuple[int, ...] = ()  # entries per full answer, the last KEPT_POLLS
    arrivals: tuple[tuple[float, int], ...] = ()  # (when, how many) new articles came
    # New articles per hour (the hour's start, how many) over the last KEPT_HOURS, for the
    # counts of the last day and week however often the feed brings them.
    hourly: tuple[tuple[float, int], ...] = ()
    health_class: str = "healthy"
    class_reason: str = ""
    # The runs (or stream panes) folded in last, so one retried after it saved is not folded
    # in twice.
    applied: tuple[str, ...] = ()

    @property
    def last_new_article(self) -> float | None:
        return self.arrivals[-1][0] if self.arrivals else None

    def new_articles_since(self, since: float) -> int:
        """New articles that came since `since`, counted by the hour (up to KEPT_HOURS)."""
        return sum(n for hour, n in self.hourly if hour + HOUR > since)

    @property
    def median_entries(self) -> float | None:
        return float(statistics.median(self.recent_entries)) if self.recent_entries else None

    @property
    def mean_gap(self) -> float | None:
        """The mean time between polls that brought new articles, once there were three."""
        if len(self.arrivals) < 3:
            return None
        return (self.arrivals[-1][0] - self.arrivals[0][0]) / (len(self.arrivals) - 1)


def updated(previous: FeedHealth | None, feed_url: str, polls: Iterable[PollObservation],
            new_articles: int, now: float, period: str = "") -> FeedHealth:
    """The feed's row after a run or window (`period` names it, and a period already folded
    in is not folded in again): `polls` folded in oldest first, `new_articles` (the records
    it wrote) counted as arriving at its last successful poll (the feed's, if it has none),
    then classed.

    A poll older than the row's last one (a stream's late pane for an earlier window, folded
    in after a later window's) adds what it saw (its answer's time, its entries, its failure)
    but leaves the state of the feed's latest poll as it is: its status, its interval, its
    failures in a row."""
    if previous is not None and period and period in previous.applied:
        return previous
    base = previous or FeedHealth(feed_url=feed_url, updated_at=now, first_polled=now)
    # The row's fields, folded into in place; the row is made at the end, not for each poll.
    row = dict(base.__dict__)
    if period:
        row["applied"] = (*base.applied, period)[-KEPT_PERIODS:]
    polls = sorted(polls, key=_polled_at)
    for poll in polls:
        _fold(row, poll)
    if new_articles > 0:
        answered = [poll.polled_at for poll in polls if poll.outcome != "failed"]
        when = answered[-1] if answered else row["last_success"]
        when = now if when is None else when
        hours = dict(row["hourly"])
        hour = when - when % HOUR
        hours[hour] = hours.get(hour, 0) + new_articles
        # In time order, a late pane's among them, for the usual gap between them.
        row["arrivals"] = tuple(sorted(
            (*row["arrivals"], (when, new_articles))))[-KEPT_ARRIVALS:]
        row["hourly"] = tuple(sorted(
            (start, n) for start, n in hours.items() if start > now - KEPT_HOURS * HOUR))
    row["updated_at"] = now
    row["health_class"], row["class_reason"] = classify(_made(row), now)
    return _made(row)


def _polled_at(poll: PollObservation) -> float:
    return poll.polled_at


def _made(fields: dict[str, Any]) -> FeedHealth:
    """A FeedHealth of `fields`, every one of them. Not through its __init__: a frozen
    dataclass's sets each of its 23 fields through object.__setattr__, and a run makes three
    rows per feed it polled."""
    health = object.__new__(FeedHealth)
    health.__dict__.update(fields)
    return health


def _latest(known: float | None, when: float) -> float:
    return when if known is None else max(known, when)


def _fold(row: dict[str, Any], poll: PollObservation) -> None:
    """Fold one poll into a row's fields (see `updated`)."""
    when = poll.polled_at
    latest = row["last_poll"] is None or when >= row["last_poll"]
    row["first_polled"] = min(row["first_polled"], when)
    if latest:
        row.update(last_poll=when, feed_title=poll.feed_title or row["feed_title"],
                   interval=poll.interval, interval_reason=poll.interval_reason,
                   last_status=poll.status)
        if poll.response_seconds is not None:
            row["response_seconds"] = poll.response_seconds
    else:  # a title the row lacks is still welcome
        row["feed_title"] = row["feed_title"] or poll.feed_title
    if poll.outcome == "failed":
        if latest:
            if not row["consecutive_failures"]:
                row["failing_since"] = when
            row["consecutive_failures"] += 1
        if row["last_failure_at"] is None or when >= row["last_failure_at"]:
            row.update(last_failure_at=when, last_failure_reason=poll.reason)
        return
    if latest:
        row.update(consecutive_failures=0, failing_since=None)
    row["last_success"] = _latest(row["last_success"], when)
    if poll.outcome == "fetched":
        row["last_200"] = _latest(row["last_200"], when)
        row["recent_entries"] = (*row["recent_entries"], poll.entries)[-KEPT_POLLS:]
    else:
        row["last_304"] = _latest(row["last_304"], when)


def classify(health: FeedHealth, now: float) -> tuple[str, str]:
    """The feed's class and why, by the rule in this module's docstring (and the README)."""
    if health.consecutive_failures and health.last_status in GONE_STATUSES:
        return "dead", f"the last poll answered {health.last_status}"
    if health.failing_since is not None and now - health.failing_since >= DEAD_AFTER:
        return "dead", (f"every poll failed for {_days(now - health.failing_since)}"
                        f" ({health.last_failure_reason})")
    if health.consecutive_failures >= FAILING_AFTER:
        return "failing", (f"{health.consecutive_failures} polls failed in a row"
                           f" ({health.last_failure_reason})")
    last = health.last_new_article
    if last is None:
        if now - health.first_polled >= QUIET_AT_LEAST:
            age = _days(now - health.first_polled)
            return "quiet", f"no new article since it was first polled, {age} ago"
        return "healthy", "new"
    gap = health.mean_gap
    if gap is None:  # fewer than three arrivals: no usual gap yet
        if now - last > QUIET_UNKNOWN_GAP:
            return "quiet", f"no new article for {_days(now - last)}"
        return "healthy", ""
    if now - last > max(QUIET_FACTOR * gap, QUIET_AT_LEAST):
        return "quiet", (f"no new article for {_days(now - last)}, usually one every"
                         f" {_days(gap)}")
    return "healthy", ""


def _days(seconds: float) -> str:
    if seconds >= DAY:
        return f"{seconds / DAY:.1f} days"
    return f"{seconds / 3600:.1f} hours"


_FIELDS = frozenset(field.name for field in dataclasses.fields(FeedHealth))


def encode(health: FeedHealth) -> str:
    """A feed's health as the state store keeps it: JSON, field by field (no pickled names,
    so a row written by one version of newsbeam is read by the next)."""
    # Its fields as they are (tuples are written as lists): dataclasses.asdict would
    # deep-copy every value, ten thousand rows a poll.
    return json.dumps(health.__dict__, separators=(",", ":"), sort_keys=True)


def decode(encoded: str) -> FeedHealth:
    """The inverse of `encode`; fields a newer version added and this one lacks are ignored,
    fields it lacks take their defaults."""
    values: dict[str, Any] = json.loads(encoded)
    if not values.keys() <= _FIELDS:
        values = {name: value for name, value in values.items() if name in _FIELDS}
    values["arrivals"] = tuple((float(when), int(n)) for when, n in values.get("arrivals", ()))
    values["hourly"] = tuple((float(hour), int(n)) for hour, n in values.get("hourly", ()))
    values["recent_entries"] = tuple(values.get("recent_entries", ()))
    values["applied"] = tuple(values.get("applied", ()))
    # A row from an older version may lack fields: they take their defaults.
    return _made(values) if len(values) == len(_FIELDS) else FeedHealth(**values)


def as_row(health: FeedHealth) -> FeedHealthRow:
    """The row a `--feed-health` sink writes for a feed."""
    now = health.updated_at
    return FeedHealthRow(
        id=health.feed_url, feed_title=health.feed_title, health_class=health.health_class,
        class_reason=health.class_reason, updated_at=_time(now),
        first_polled=_time(health.first_polled), last_poll=_maybe(health.last_poll),
        last_success=_maybe(health.last_success), last_200=_maybe(health.last_200),
        last_304=_maybe(health.last_304), consecutive_failures=health.consecutive_failures,
        failing_since=_maybe(health.failing_since), last_status=health.last_status,
        last_failure_reason=health.last_failure_reason,
        last_failure_at=_maybe(health.last_failure_at),
        new_articles_day=health.new_articles_since(now - DAY),
        new_articles_week=health.new_articles_since(now - 7 * DAY),
        last_new_article=_maybe(health.last_new_article),
        median_entries_per_poll=health.median_entries,
        mean_seconds_between_new_articles=health.mean_gap,
        poll_interval_seconds=health.interval, poll_interval_reason=health.interval_reason,
        response_seconds=health.response_seconds,
    )


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _maybe(seconds: float | None) -> datetime | None:
    return None if seconds is None else _time(seconds)
