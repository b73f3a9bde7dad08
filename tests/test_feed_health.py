"""Each feed's health: what its polls answered folded into one row per feed, kept in the state
store, and classed by the README's rule (healthy, quiet, failing, dead)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest

from transforms.core import DeadLetter, FeedHealthRow, PollObservation
from transforms.feeds.parsed import ParsedFeed, polled
from transforms.feeds.schedule import poll_wait
from transforms.health import FeedHealth, as_row, classify, decode, encode, updated
from transforms.health.rules import DAY, DEAD_AFTER, FAILING_AFTER, QUIET_AT_LEAST, QUIET_FACTOR
from transforms.state import open_state

URL = "https://news.example.org/feed.xml"
T0 = 1_790_000_000.0  # a Tuesday in 2026


def _poll(at: float, outcome: str = "fetched", status: int | None = 200, **more: object
          ) -> PollObservation:
    return PollObservation(feed_url=URL, feed_title=None, polled_at=at, outcome=outcome,
                           status=status, **more)  # type: ignore[arg-type]


def _failed(at: float, status: int | None = 503, reason: str = "http_status") -> PollObservation:
    return _poll(at, "failed", status, reason=reason)


def _hourly(polls: int, new_every: int = 1, start: float = T0) -> FeedHealth:
    """A feed polled every hour, bringing a new article on every `new_every`-th poll."""
    health = None
    for hour in range(polls):
        at = start + hour * 3600
        health = updated(health, URL, [_poll(at, entries=10)], int(hour % new_every == 0), at)
    assert health is not None
    return health


def test_a_feed_that_brings_articles_is_healthy() -> None:
    health = _hourly(6)
    assert (health.health_class, health.consecutive_failures) == ("healthy", 0)
    assert health.mean_gap == 3600 and health.median_entries == 10.0
    assert health.new_articles_since(T0) == 6


def test_a_feed_with_no_new_article_for_four_usual_gaps_is_quiet() -> None:
    # New articles every 8 hours: quiet after max(4 x 8 h, a day) = 32 h without one.
    health = _hourly(25, new_every=8)
    last = health.last_new_article
    assert last == T0 + 24 * 3600
    limit = max(QUIET_FACTOR * 8 * 3600, QUIET_AT_LEAST)
    assert classify(health, last + limit - 60)[0] == "healthy"
    quiet, why = classify(health, last + limit + 60)
    assert quiet == "quiet" and "usually one every 8.0 hours" in why
    # 304s and polls that bring nothing keep it quiet; a new article makes it healthy again.
    later = last + limit + 3600
    still = updated(health, URL, [_poll(later, "not_modified", 304)], 0, later)
    assert still.health_class == "quiet" and still.last_304 == later
    back = updated(still, URL, [_poll(later + 60)], 2, later + 60)
    assert back.health_class == "healthy" and back.last_new_article == later + 60


def test_a_feed_never_bringing_an_article_is_quiet_after_a_day() -> None:
    health = updated(None, URL, [_poll(T0, entries=0)], 0, T0)
    assert classify(health, T0 + QUIET_AT_LEAST - 1) == ("healthy", "new")
    assert classify(health, T0 + QUIET_AT_LEAST)[0] == "quiet"


def test_failures_in_a_row_make_a_feed_failing_and_an_answer_heals_it() -> None:
    health = _hourly(3)
    for n in range(1, FAILING_AFTER + 1):
        at = T0 + (3 + n) * 3600
        health = updated(health, URL, [_failed(at)], 0, at)
        assert health.consecutive_failures == n
        assert health.health_class == ("failing" if n >= FAILING_AFTER else "healthy")
    assert health.failing_since == T0 + 4 * 3600 and health.last_failure_reason == "http_status"
    assert "3 polls failed in a row (http_status)" in health.class_reason
    at = T0 + 10 * 3600
    healed = updated(health, URL, [_poll(at, "not_modified", 304)], 0, at)
    assert (healed.health_class, healed.consecutive_failures, healed.failing_since) == (
        "healthy", 0, None)
    assert healed.last_failure_at == T0 + 6 * 3600  # kept, to see when it last failed


def test_a_feed_failing_for_a_week_or_gone_is_dead() -> None:
    health = _hourly(3)
    at = T0 + 3 * 3600
    health = updated(health, URL, [_failed(at, None, "connect_error")], 0, at)
    assert classify(health, at + DEAD_AFTER - 1)[0] != "dead"  # one failure, a week on
    for day in range(1, 8):
        health = updated(health, URL, [_failed(at + day * DAY, None, "connect_error")], 0,
                         at + day * DAY)
    assert health.health_class == "dead" and "7.0 days" in health.class_reason
    for status in (404, 410):
        gone = updated(_hourly(3), URL, [_failed(T0 + 4 * 3600, status)], 0, T0 + 4 * 3600)
        assert (gone.health_class, gone.class_reason) == (
            "dead", f"the last poll answered {status}")
    # A 500 is not "gone": one failure leaves a feed healthy.
    assert updated(_hourly(3), URL, [_failed(T0 + 4 * 3600, 500)], 0,
                   T0 + 4 * 3600).health_class == "healthy"


def test_polls_fold_in_time_order_and_keep_what_each_kind_of_answer_tells() -> None:
    polls = [_poll(T0 + 120, "not_modified", 304, response_seconds=0.2),
             _poll(T0, entries=7, response_seconds=0.5, interval=900.0,
                   interval_reason="server"),
             _failed(T0 + 60)]
    health = updated(None, URL, polls, 0, T0 + 180)
    assert (health.first_polled, health.last_poll, health.last_200, health.last_304) == (
        T0, T0 + 120, T0, T0 + 120)
    assert (health.last_success, health.consecutive_failures) == (T0 + 120, 0)
    assert health.recent_entries == (7,) and health.response_seconds == 0.2
    assert health.last_failure_at == T0 + 60


def test_parsing_adds_the_entries_and_an_unusable_body_is_a_failed_poll() -> None:
    poll = _poll(T0)
    entries = ParsedFeed("Example News", (), (), None, None)
    assert polled(poll, dataclasses.replace(entries, entries=("e",) * 12)) == (  # type: ignore[arg-type]
        dataclasses.replace(poll, entries=12, feed_title="Example News"))
    named = dataclasses.replace(poll, feed_title="Our name for it")
    assert polled(named, entries).feed_title == "Our name for it"
    letter = DeadLetter(id="x", stage="parse_entries", reason="feed_empty", subject="feed",
                        url=URL, feed_url=URL, error_type="", message="", at=None)  # type: ignore[arg-type]
    unusable = polled(poll, dataclasses.replace(entries, dead_letters=(letter,)))
    assert (unusable.outcome, unusable.reason, unusable.status) == ("failed", "feed_empty", 200)
    # An entry lost for want of a link does not make the feed unusable.
    lost = dataclasses.replace(letter, subject="entry", reason="entry_without_link")
    assert polled(poll, dataclasses.replace(entries, dead_letters=(lost,))).outcome == "fetched"


def test_the_row_says_what_an_analyst_asks() -> None:
    health = _hourly(30, new_every=2)
    row = as_row(health)
    assert row.id == URL and row.health_class == "healthy"
    now = health.updated_at
    assert row.new_articles_day == sum(1 for hour in range(30) if hour % 2 == 0
                                       and T0 + hour * 3600 >= now - DAY)
    assert row.new_articles_week == 15 and row.mean_seconds_between_new_articles == 7200
    assert row.last_new_article is not None and row.last_new_article.timestamp() == T0 + 28 * 3600
    assert row.to_dict()["updated_at"].endswith("Z")


def test_the_day_and_week_counts_hold_however_often_a_feed_brings_articles() -> None:
    # Every 10 minutes for 9 days, 2 articles each: more polls than the gaps are kept for.
    health = None
    for poll in range(9 * 144):
        at = T0 + poll * 600
        health = updated(health, URL, [_poll(at)], 2, at)
    assert health is not None and len(health.arrivals) == 20
    # Counted by the hour: the hour the day (or week) starts in counts whole.
    an_hour = 2 * 6
    row = as_row(health)
    assert 2 * 144 <= row.new_articles_day <= 2 * 144 + an_hour
    assert 2 * 144 * 7 <= row.new_articles_week <= 2 * 144 * 7 + an_hour
    assert len(health.hourly) <= 7 * 24 + 1  # older hours are let go


def test_the_kept_encoding_is_plain_json_and_reads_back() -> None:
    health = dataclasses.replace(_hourly(3), feed_title="Example", last_status=200)
    encoded = encode(health)
    assert json.loads(encoded)["arrivals"][0] == [T0, 1]  # no pickled names
    assert decode(encoded) == health
    # A field a later version adds is ignored; one this version lacks takes its default.
    values = json.loads(encoded)
    values["future_field"] = 1
    del values["feed_title"]
    assert decode(json.dumps(values)) == dataclasses.replace(health, feed_title=None)


def test_the_poll_interval_says_what_set_it() -> None:
    assert poll_wait(300) == (300, "config")
    assert poll_wait(300, failures=2) == (1200, "backoff")
    assert poll_wait(300, hints=(900.0, None)) == (900, "server")
    assert poll_wait(300, failures=2, hints=(900.0,)) == (1200, "backoff")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def state_uri(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'state.db'}"
    return str(request.getfixturevalue("postgres_uri"))


def test_the_state_store_keeps_each_feeds_health(state_uri: str) -> None:
    store = open_state(state_uri)
    try:
        assert store.feed_health([URL]) == {}
        first = encode(_hourly(2))
        store.save_feed_health({URL: first, URL + "?b": encode(_hourly(1))})
        # (PostgreSQL keeps it as jsonb, and gives back its own spelling of the JSON.)
        assert decode(store.feed_health([URL])[URL]) == decode(first)
        second = encode(_hourly(5))
        store.save_feed_health({URL: second})
        kept = store.feed_health([URL, URL + "?b", "https://other.example/"])
        assert set(kept) == {URL, URL + "?b"} and decode(kept[URL]) == decode(second)
    finally:
        store.close()


def _rss(site_url: str, items: list[str]) -> bytes:
    entries = "".join(f"<item><title>{item}</title><link>{site_url}/a/{item}</link></item>"
                      for item in items)
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Desk</title>'
            f"{entries}</channel></rss>").encode()


@pytest.mark.slow
def test_runs_keep_each_feeds_health_and_write_one_row_per_feed(
    tmp_path, postgres_uri: str, capsys: pytest.CaptureFixture[str],
) -> None:
    from pipeline.cli import main
    from pipeline.demo.loopback import LoopbackServer, Route

    base, prefix = postgres_uri.split("?table_prefix=")
    table = f"{prefix}health"
    page = b"<html><body><article><p>" + b"Words of the article. " * 60 + b"</p></article>"
    with LoopbackServer({}) as site:
        feed = {"Content-Type": "application/rss+xml"}
        site.routes["/fresh.xml"] = Route(_rss(site.base_url, ["one"]), headers=feed)
        site.routes["/flaky.xml"] = Route(b"busy", 503)
        site.routes["/gone.xml"] = Route(b"", 410)
        for item in ("one", "two"):
            site.routes[f"/a/{item}"] = Route(page, headers={"Content-Type": "text/html"})
        feeds = tmp_path / "feeds.yaml"
        feeds.write_text("feeds:\n" + "".join(f"  - url: {site.url(path)}\n" for path in (
            "/fresh.xml", "/flaky.xml", "/gone.xml")))
        argv = ["run", "--feeds", str(feeds), "--out", str(tmp_path / "out"),
                "--allow-private-networks", f"--state={postgres_uri}",
                f"--feed-health={base}?table={table}", "--http-timeout=5"]
        summaries = []
        for run in range(3):
            if run == 2:  # the fresh feed brings a second article
                site.routes["/fresh.xml"] = Route(_rss(site.base_url, ["one", "two"]),
                                                  headers=feed)
            assert main(argv) == 0
            capsys.readouterr()
            summaries.append(json.loads((tmp_path / "out" / "run.json").read_text()))
    assert [s["feed_health"] for s in summaries] == [
        {"healthy": 2, "dead": 1}, {"healthy": 2, "dead": 1},
        {"healthy": 1, "failing": 1, "dead": 1}]
    import psycopg

    with psycopg.connect(base) as connection:
        rows = {row[0].rsplit("/", 1)[1]: row[1:] for row in connection.execute(
            f"SELECT id, health_class, consecutive_failures, last_status, new_articles_day,"
            f" last_failure_reason FROM {table}")}
    assert rows == {
        "fresh.xml": ("healthy", 0, 200, 2, None),
        "flaky.xml": ("failing", 3, 503, 0, "http_status"),
        "gone.xml": ("dead", 3, 410, 0, "http_status"),
    }


def test_the_row_carries_every_field_of_the_kept_health() -> None:
    health = FeedHealth(
        feed_url=URL, updated_at=T0 + 100 * 3600, first_polled=T0, feed_title="Desk",
        last_poll=T0 + 99 * 3600, last_success=T0 + 90 * 3600, last_200=T0 + 80 * 3600,
        last_304=T0 + 90 * 3600, consecutive_failures=9, failing_since=T0 + 91 * 3600,
        last_status=503, last_failure_reason="http_status", last_failure_at=T0 + 99 * 3600,
        response_seconds=0.25, interval=600.0, interval_reason="backoff",
        recent_entries=(4, 6), arrivals=((T0, 2), (T0 + 7200, 1), (T0 + 90 * 3600, 5)),
        hourly=((T0 + 70 * 3600, 1), (T0 + 90 * 3600, 5)), health_class="failing",
        class_reason="9 polls failed in a row (http_status)")
    at = {name: datetime.fromtimestamp(value, UTC) for name, value in (
        ("updated", T0 + 100 * 3600), ("first", T0), ("poll", T0 + 99 * 3600),
        ("success", T0 + 90 * 3600), ("200", T0 + 80 * 3600), ("since", T0 + 91 * 3600),
        ("failure", T0 + 99 * 3600))}
    assert as_row(health) == FeedHealthRow(
        id=URL, feed_title="Desk", health_class="failing",
        class_reason="9 polls failed in a row (http_status)", updated_at=at["updated"],
        first_polled=at["first"], last_poll=at["poll"], last_success=at["success"],
        last_200=at["200"], last_304=at["success"], consecutive_failures=9,
        failing_since=at["since"], last_status=503, last_failure_reason="http_status",
        last_failure_at=at["failure"],
        new_articles_day=5,  # the hour 10 hours back; the one 30 hours back is out
        new_articles_week=6, last_new_article=at["success"], median_entries_per_poll=5.0,
        mean_seconds_between_new_articles=45 * 3600.0, poll_interval_seconds=600.0,
        poll_interval_reason="backoff", response_seconds=0.25)
    # A week is seven days: an hour 7 days and 1 hour back is out of it.
    old = dataclasses.replace(health, hourly=((T0 + 100 * 3600 - 7 * DAY - 3600, 4),))
    assert as_row(old).new_articles_week == 0


def test_the_kept_form_is_pinned_and_old_rows_read_with_defaults() -> None:
    health = FeedHealth(feed_url=URL, updated_at=1.0, first_polled=1.0, arrivals=((1.0, 2),),
                        hourly=((0.0, 2),), recent_entries=(3,))
    encoded = encode(health)
    assert encoded.startswith('{"applied":[],"arrivals":[[1.0,2]],"class_reason":"",'
                              '"consecutive_failures":0,')
    assert '"hourly":[[0.0,2]]' in encoded and '"recent_entries":[3]' in encoded
    # A row kept before arrivals, hours and entries were: they start empty.
    old = json.loads(encoded)
    for name in ("arrivals", "hourly", "recent_entries", "applied"):
        del old[name]
    assert decode(json.dumps(old)) == dataclasses.replace(health, arrivals=(), hourly=(),
                                                          recent_entries=())


def test_each_class_says_why_in_words() -> None:
    health = _hourly(25, new_every=8)
    last = health.last_new_article
    assert last is not None
    limit = max(QUIET_FACTOR * 8 * 3600, QUIET_AT_LEAST)
    assert classify(health, last + limit) == ("healthy", "")  # not quiet until past the limit
    assert classify(health, last + 36 * 3600) == (
        "quiet", "no new article for 1.5 days, usually one every 8.0 hours")
    never = updated(None, URL, [_poll(T0, entries=0)], 0, T0)
    assert classify(never, T0 + DAY) == (
        "quiet", "no new article since it was first polled, 1.0 days ago")


def test_new_articles_arrive_at_the_poll_that_brought_them() -> None:
    health = updated(None, URL, [_poll(T0 + 60)], 3, T0 + 500)
    assert health.arrivals == ((T0 + 60, 3),) and health.updated_at == T0 + 500
    # Without a successful poll in the period (a stream's late records), at the period's end.
    failed = updated(None, URL, [_failed(T0 + 60)], 2, T0 + 500)
    assert failed.arrivals == ((T0 + 500, 2),)
    # A feed's title stays once known, when a later poll does not say it.
    titled = updated(None, URL, [dataclasses.replace(_poll(T0), feed_title="Desk")], 0, T0)
    assert updated(titled, URL, [_poll(T0 + 60)], 0, T0 + 60).feed_title == "Desk"


def test_a_run_folded_in_again_changes_nothing() -> None:
    # A runner retries the step that keeps the health after it saved: the same run (or
    # stream pane) is not folded in twice.
    first = updated(None, URL, [_failed(T0)], 2, T0, period="20261207T000000000Z")
    again = updated(first, URL, [_failed(T0)], 2, T0 + 5, period="20261207T000000000Z")
    assert again is first and again.consecutive_failures == 1
    assert again.new_articles_since(0) == 2
    later = updated(first, URL, [_failed(T0 + 60)], 0, T0 + 60, period="20261207T010000000Z")
    assert later.consecutive_failures == 2
    assert later.applied == ("20261207T000000000Z", "20261207T010000000Z")


def test_a_late_pane_of_an_earlier_window_leaves_the_latest_poll_standing() -> None:
    # A stream's window of polls at T0 fired, then one at T0 + 60; a late pane of the first
    # window (a poll at T0 + 30) comes after both. What it saw is kept; the feed's state is
    # still that of its latest poll.
    health = updated(None, URL, [_poll(T0, entries=5)], 1, T0, period="w0#0")
    health = updated(health, URL, [_poll(T0 + 60, "not_modified", 304,
                                         response_seconds=0.1, interval=600.0)],
                     0, T0 + 60, period="w1#0")
    late = updated(health, URL, [_failed(T0 + 30, 503)], 0, T0 + 90, period="w0#1")
    assert (late.last_poll, late.last_status, late.consecutive_failures) == (T0 + 60, 304, 0)
    assert (late.failing_since, late.response_seconds, late.interval) == (None, 0.1, 600.0)
    assert (late.last_failure_at, late.last_failure_reason) == (T0 + 30, "http_status")
    assert (late.last_success, late.health_class) == (T0 + 60, "healthy")
    titled = updated(health, URL, [dataclasses.replace(_poll(T0 + 30), feed_title="Gazette")],
                     0, T0 + 90, period="w0#1")
    assert (titled.feed_title, titled.last_poll, titled.last_200) == ("Gazette", T0 + 60, T0 + 30)
    # A late success after a later failure: the failure still stands, the answer is kept.
    failing = updated(health, URL, [_failed(T0 + 120)], 0, T0 + 120, period="w2#0")
    answered = updated(failing, URL, [_poll(T0 + 90, entries=9)], 0, T0 + 150, period="w1#1")
    assert (answered.consecutive_failures, answered.failing_since) == (1, T0 + 120)
    assert (answered.last_poll, answered.last_status) == (T0 + 120, 503)
    assert (answered.last_200, answered.last_success) == (T0 + 90, T0 + 90)
    assert answered.recent_entries == (5, 9)
    # A late pane's new articles arrived at its own poll, in time order among the others.
    more = updated(health, URL, [_poll(T0 + 120, entries=6)], 2, T0 + 120, period="w2#0")
    brought = updated(more, URL, [_poll(T0 + 30, entries=6)], 3, T0 + 150, period="w0#1")
    assert brought.arrivals == ((T0, 1), (T0 + 30, 3), (T0 + 120, 2))
    # Polls of one pane still fold oldest first, each the latest in its turn.
    assert updated(None, URL, [_failed(T0 + 10), _poll(T0)], 0, T0 + 20).consecutive_failures == 1


def test_a_feed_without_a_usual_gap_is_quiet_after_a_week_without_articles() -> None:
    health = updated(None, URL, [_poll(T0)], 2, T0)  # one arrival: no usual gap yet
    assert classify(health, T0 + 6 * DAY)[0] == "healthy"
    assert classify(health, T0 + 8 * DAY) == ("quiet", "no new article for 8.0 days")


def test_a_redis_stream_is_refused_for_feed_health(
    tmp_path, capsys: pytest.CaptureFixture[str],
) -> None:
    from pipeline.cli import main

    (tmp_path / "feeds.yaml").write_text("feeds:\n  - url: http://127.0.0.1:9/f.xml\n")
    with pytest.raises(SystemExit) as exited:
        main(["run", "--feeds", str(tmp_path / "feeds.yaml"), "--out", str(tmp_path / "out"),
              "--state=none", "--feed-health=redis://127.0.0.1:6379/0?stream=health"])
    assert exited.value.code == 2
    assert "a Redis stream keeps the first row of each feed only" in capsys.readouterr().err


@pytest.mark.slow
def test_a_run_failing_after_its_commit_says_so_and_its_rerun_finds_nothing_new(
    tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    # Feed health is kept once the run's state is committed; if that step fails, the run did
    # write its records, and the error must not tell the user that nothing was committed.
    from pipeline.cli import main
    from pipeline.demo.loopback import LoopbackServer, Route
    from transforms.health import track

    page = b"<html><body><article><p>" + b"Words of the article. " * 60 + b"</p></article>"
    argv_tail = ["--out", str(tmp_path / "out"), "--allow-private-networks",
                 f"--state=sqlite:{tmp_path / 'state.db'}"]

    def health_store_away(*args: object, **kwargs: object) -> list:
        raise RuntimeError("the health table is locked")

    with LoopbackServer({}) as site:
        site.routes["/feed.xml"] = Route(_rss(site.base_url, ["one"]),
                                         headers={"Content-Type": "application/rss+xml"})
        site.routes["/a/one"] = Route(page, headers={"Content-Type": "text/html"})
        (tmp_path / "feeds.yaml").write_text(f"feeds:\n  - url: {site.url('/feed.xml')}\n")
        argv = ["run", "--feeds", str(tmp_path / "feeds.yaml"), *argv_tail]
        with monkeypatch.context() as patched:
            patched.setattr(track, "fold_health", health_store_away)
            try:
                status = main(argv)
            except SystemExit as exited:
                status = int(exited.code or 0)
        failed = capsys.readouterr().err
        assert status == 1
        assert failed.startswith(
            "newsbeam: error: the run failed after committing its state (its records are"
            " written; its feed health and alerts were not kept): the health table is locked"
        ), failed
        assert main(argv) == 0
    rerun = json.loads((tmp_path / "out" / "run.json").read_text())
    assert rerun["entries"]["seen_before"] == 1 and rerun["entries"]["records"] == 0
