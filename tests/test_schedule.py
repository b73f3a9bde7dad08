"""When a stream polls a feed: its interval, what its server asks for, backing off a failing
feed and recovering; durations as people write them; the batch job on a schedule."""

from __future__ import annotations

import logging
import os
import signal
from collections import Counter
from datetime import UTC, datetime

import pytest

from pipeline.cli.feeds_file import load_feeds
from pipeline.job.lease import StateBusyError
from pipeline.job.schedule import run_every, wait_before_next
from pipeline.job.setup import RunFailedError
from transforms.core import (
    ConfigError,
    Feed,
    FetchedFeed,
    Validators,
    format_duration,
    parse_duration,
    summarize,
    summary_line,
)
from transforms.feeds import (
    FeedPoll,
    FeedState,
    FeedStatesCoder,
    after_poll,
    max_age,
    next_poll_in,
    poll_shard,
    poll_time,
    rss_ttl,
    stale_tick,
    tick_interval,
)
from transforms.fetch import FetchError

FEED = Feed("https://news.example/feed.xml")


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90), ("5m", 300), ("1h30m", 5400), ("7d", 604800), ("45", 45), ("0.5s", 0.5),
])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5 minutes", "m5", "-5m", "0s", "5x", "1h-3m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_durations_read_back() -> None:
    assert format_duration(5400) == "1h30m" and parse_duration(format_duration(93784)) == 93784


def test_a_feed_sets_its_own_poll_interval(tmp_path) -> None:
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds:\n  - url: https://a.example/feed\n    poll_interval: 15m\n"
                     "  - https://b.example/feed\n")
    assert [feed.poll_interval for feed in load_feeds(feeds)] == [900.0, None]
    feeds.write_text("feeds:\n  - url: https://a.example/feed\n    poll_interval: often\n")
    with pytest.raises(ConfigError, match=r"feeds\[0\].poll_interval: 'often' is not a duration"):
        load_feeds(feeds)


def test_what_servers_ask_for() -> None:
    assert max_age("public, max-age=600") == 600
    assert max_age("max-age=600, no-cache") is None  # must be asked again anyway
    assert max_age(None) is None and max_age("private") is None
    rss = b"<rss><channel><title>t</title><ttl>30</ttl><item><ttl>1</ttl></item></channel></rss>"
    assert rss_ttl(rss) == 1800  # the channel's, not an item's
    assert rss_ttl(b"<rss><channel><item><ttl>5</ttl></item></channel></rss>") is None
    assert rss_ttl(b"<item><ttl>5</ttl></item>") is None  # an item's, even at the start
    assert rss_ttl(b"<ttl>5</ttl><item></item>") == 300  # the channel's, even at the start
    two_items = b"<rss><channel><item><ttl>5</ttl></item><item></item></channel></rss>"
    assert rss_ttl(two_items) is None  # items end the channel's head at the first of them


def test_next_poll_is_never_sooner_than_the_server_asks_and_backs_off() -> None:
    assert next_poll_in(300) == 300
    assert next_poll_in(300, hints=(600, None)) == 600  # max-age of 10 minutes
    assert next_poll_in(300, hints=(60,)) == 300  # a shorter hint does not poll more often
    assert [next_poll_in(300, failures=n) for n in (1, 2, 3)] == [600, 1200, 2400]
    assert next_poll_in(300, failures=20) == 300 * 32  # capped
    assert next_poll_in(300, hints=(10**9,)) == 7 * 86400  # a hint is honoured up to a week


def test_a_poll_counts_from_its_tick_unless_the_tick_came_more_than_half_a_tick_late() -> None:
    # On time (or a little late): the tick's time, so the tick an interval later finds the
    # feed due, even with max-age equal to the interval.
    assert poll_time(tick=1000.0, now=1000.4, tick_interval=300) == 1000.0
    state = after_poll(FeedState(), FeedPoll(None, True, None, Validators(), 300), 1000.0, 300)
    assert state.next_due == 1300.0  # due when the next tick (1300) arrives, at 1300 or after
    # After a stall: half a tick before it ran, so the owed ticks that follow are not due.
    assert poll_time(tick=1000.0, now=2000.0, tick_interval=300) == 1850.0


@pytest.mark.parametrize(("tick", "now", "last", "stale"), [
    (100.0, 100.5, None, False),  # on time
    (100.0, 101.0, None, False),  # a later tick is due, but none was let through yet
    (100.0, 101.0, 100.8, True),  # a later tick is due, and one went through just now
    (100.0, 101.0, 100.5, False),  # ... half a tick ago: let one through per half tick
    (100.0, 101.0, 99.0, False),  # ... a whole tick ago
    (100.0, 100.9, 100.5, False),  # the next tick is not due yet: this one is the newest
])
def test_a_tick_is_stale_when_a_later_one_is_due_and_one_went_through_within_a_tick(
    tick: float, now: float, last: float | None, stale: bool,
) -> None:
    assert stale_tick(tick, now, 1.0, last) is stale


def test_the_impulse_ticks_as_often_as_the_most_frequent_feed() -> None:
    feeds = (Feed("http://127.0.0.1/a"), Feed("http://127.0.0.1/b", poll_interval=60))
    assert tick_interval(feeds, 300) == 60
    assert tick_interval(feeds[:1], 300) == 300


def _fetched(body: bytes = b"<rss><channel><title>t</title></channel></rss>") -> FetchedFeed:
    return FetchedFeed(FEED, FEED.url, 200, "application/rss+xml", body, datetime.now(UTC))


def test_a_failing_feed_backs_off_and_recovers_when_it_answers() -> None:
    state = FeedState(Validators('"v1"', None))
    down = FeedPoll(None, False, FetchError("http_status", "HTTP 503", url=FEED.url, status=503),
                    Validators(), None)
    for failures in (1, 2, 3):
        state = after_poll(state, down, 1000.0, 300)
        assert (state.failures, state.next_due) == (failures, 1000.0 + 300 * 2 ** failures)
    assert state.validators == Validators('"v1"', None)  # kept for when it answers again
    throttled = FeedPoll(None, False, FetchError("http_status", "HTTP 429", url=FEED.url,
                                                 status=429, retry_after=7200), Validators(),
                         None)
    assert after_poll(FeedState(), throttled, 0.0, 300).next_due == 7200  # as it asked
    back = FeedPoll(None, True, None, state.validators, None)  # 304
    recovered = after_poll(state, back, 5000.0, 300)
    assert (recovered.failures, recovered.next_due) == (0, 5300.0)


def test_a_full_answer_replaces_validators_and_its_hints_set_the_next_poll() -> None:
    ttl = b"<rss><channel><title>t</title><ttl>60</ttl></channel></rss>"
    fresh = FeedPoll(_fetched(ttl), False, None, Validators('"v2"', None), 600)
    state = after_poll(FeedState(Validators('"v1"', None)), fresh, 0.0, 300)
    assert state.validators == Validators('"v2"', None)
    assert state.next_due == 3600  # the feed's <ttl> (an hour) beats max-age and interval
    silent = FeedPoll(_fetched(), False, None, Validators(), None)  # no validators this time
    assert after_poll(state, silent, 0.0, 300).validators == Validators()


def test_a_scheduled_run_that_fails_is_logged_and_the_next_one_goes_ahead(
    caplog: pytest.LogCaptureFixture,
) -> None:
    accounted = dict(summarize(Counter()), run_id="r2")  # a run with nothing to do
    calls = []

    def run() -> dict:
        calls.append(len(calls) + 1)
        if len(calls) == 1:
            raise RunFailedError("the run failed, nothing was committed: sink went away")
        os.kill(os.getpid(), signal.SIGTERM)  # stop after this run
        return accounted

    with caplog.at_level(logging.INFO, logger="newsbeam.schedule"):
        status = run_every(0.01, run)
    assert calls == [1, 2] and status == 0
    messages = [record.getMessage() for record in caplog.records]
    assert "sink went away; the next run starts as planned" in messages[0]
    assert any(message.startswith("run r2: ") for message in messages)


def test_feed_states_are_kept_in_an_explicit_encoding() -> None:
    states = {"http://127.0.0.1/b.xml": FeedState(Validators('"v1"', None), 1000.5, 2),
              "http://127.0.0.1/a.xml": FeedState()}
    coder = FeedStatesCoder()
    encoded = coder.encode(states)
    # The form a running stream's state is in: a change to it needs a migration.
    assert encoded == (b'{"http://127.0.0.1/a.xml":[null,null,0.0,0],'
                       b'"http://127.0.0.1/b.xml":["\\"v1\\"",null,1000.5,2]}')
    assert coder.decode(encoded) == states
    assert coder.is_deterministic()


def test_a_hosts_feeds_are_polled_in_one_shard() -> None:
    urls = [f"http://127.0.0.{host}/feed/{n}.xml" for host in range(2, 12) for n in range(5)]
    shards = {url: poll_shard(url, 4) for url in urls}
    for host in range(2, 12):
        assert len({shard for url, shard in shards.items() if f".{host}/" in url}) == 1
    assert set(shards.values()) <= {0, 1, 2, 3} and len(set(shards.values())) > 1
    assert {poll_shard(url, 1) for url in urls} == {0}


def test_a_not_modified_answer_keeps_the_validators_and_honours_max_age() -> None:
    state = FeedState(Validators('"v1"', "Tue, 04 Mar 2025 07:45:00 GMT"), failures=0)
    not_modified = FeedPoll(None, True, None, Validators(), 900)  # 304, max-age=900
    after = after_poll(state, not_modified, 1000.0, 300)
    assert after.validators == state.validators
    assert (after.next_due, after.failures) == (1900.0, 0)


def _scheduled(outcomes: list[object], caplog: pytest.LogCaptureFixture) -> tuple[int, list]:
    """run_every over runs that return or raise `outcomes` in turn (SIGTERM after the last):
    its exit status and what it logged."""
    calls = iter(outcomes)

    def run() -> dict:
        outcome = next(calls)
        if not outcomes or outcome is outcomes[-1]:
            os.kill(os.getpid(), signal.SIGTERM)  # stop after this run
        if isinstance(outcome, Exception):
            raise outcome
        return outcome  # type: ignore[return-value]

    with caplog.at_level(logging.INFO, logger="newsbeam.schedule"):
        status = run_every(0.001, run)
    return status, [(r.levelname, r.getMessage()) for r in caplog.records
                    if r.name == "newsbeam.schedule"]


def _summary(run_id: str, accounted: bool = True) -> dict:
    summary = dict(summarize(Counter({"feeds.configured": 1, "feeds.fetched": 1})),
                   run_id=run_id)
    summary["accounted"] = {"feeds": True, "entries": accounted}
    return summary


@pytest.mark.parametrize(("last", "status", "level"), [
    (_summary("r9"), 0, "INFO"),
    (_summary("r9", accounted=False), 3, "INFO"),  # counts that do not add up
    (RunFailedError("the run failed, nothing was committed: db away"), 1, "ERROR"),
    (StateBusyError("the state sqlite:s.db is held by newsbeam run (pid 7 on h, since t)"), 4,
     "WARNING"),
])
def test_run_every_exits_with_the_status_of_its_last_run(
    caplog: pytest.LogCaptureFixture, last: object, status: int, level: str,
) -> None:
    first = RunFailedError("the run failed, nothing was committed: sink away")
    before = signal.getsignal(signal.SIGTERM)
    got, logged = _scheduled([first, last], caplog)
    assert got == status
    assert ("WARNING", "SIGTERM: finishing the run in progress, then stopping") in logged
    assert signal.getsignal(signal.SIGTERM) is before  # handlers given back
    assert logged[0] == ("ERROR", "the run failed, nothing was committed: sink away;"
                                  " the next run starts as planned")
    if isinstance(last, dict):
        assert logged[-1] == (level, f"run r9: {summary_line(last)}")
    else:
        assert logged[-1] == (level, f"{last}; the next run starts as planned")


@pytest.mark.parametrize(("started", "now", "wait"), [
    (100.0, 100.0, 60.0),  # a run that took no time: the whole period
    (100.0, 130.0, 30.0),  # the rest of the period
    (100.0, 160.0, 0.0),  # exactly a period: at once
    (100.0, 400.0, 0.0),  # outlasted its period: at once, once
])
def test_runs_start_a_period_apart_unless_one_outlasts_it(
    started: float, now: float, wait: float,
) -> None:
    assert wait_before_next(60.0, started, now) == wait
