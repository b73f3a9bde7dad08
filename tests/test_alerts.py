"""Alerts: a topic whose count in a run (or window) is far above its usual level becomes an
alert record, with the articles that made it so, in the summary and the alerts sink."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.helpers import entry
from transforms.alerts import MIN_COUNT, MIN_PERIODS, surge, topic_alerts
from transforms.core import Evidence, Record, TopicTag
from transforms.state import open_state

END = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _record(n: int, *topics: str) -> Record:
    tags = tuple(TopicTag(t, "about", 1.0, (Evidence(t, 3, ("title",)),)) for t in topics)
    e = entry(f"http://127.0.0.1/a/{n}")
    return Record(
        id=f"id{n:03d}", url=e.link, canonical_url=e.canonical_url, feed_url=e.feed_url,
        feed_title=None, guid=None, title=f"Story {n}", authors=(), published_at=None,
        published_source="none", fetched_at=END, language="en", site_name=None, summary=None,
        text="text", extraction_method="trafilatura", lead_image=None, paywalled=False,
        word_count=1, topics=tags, taxonomy_version="t", content_fingerprint="f")


def test_the_rule_wants_a_usual_level_a_margin_and_a_minimum() -> None:
    usual = [2, 3, 1, 2, 3, 2, 1, 2, 3, 2]
    assert surge(usual, 12).alert
    measured = surge(usual, 12)
    assert measured.periods == 10 and measured.mean == pytest.approx(2.1)
    assert measured.threshold == pytest.approx(2.1 + 3 * measured.stdev)
    assert not surge(usual, 4).alert  # within the usual spread
    assert not surge(usual[:MIN_PERIODS - 1], 12).alert  # not enough history yet
    assert not surge([0] * 12, MIN_COUNT - 1).alert  # above a flat zero, but too few
    assert surge([0] * 12, MIN_COUNT).alert


def test_a_surging_topic_is_an_alert_with_its_articles(tmp_path: Path) -> None:
    store = open_state(f"sqlite:{tmp_path / 'state.db'}")
    try:
        for day in range(1, 11):  # ten earlier runs: trade 1 or 2, taiwan 3
            store.save_topic_counts("run", END - timedelta(days=day),
                                    {"trade": 1 + day % 2, "taiwan": 3})
        store.save_topic_counts("run", END - timedelta(days=40), {"trade": 50})  # too old
        store.save_topic_counts("window", END - timedelta(days=1), {"trade": 99})  # other kind
        records = [_record(n, "trade") for n in range(8)] + [_record(9, "taiwan")]
        (alert,) = topic_alerts(records, ("trade", "taiwan", "fentanyl"), store, "run", None,
                                END)
        assert (alert.topic, alert.count, alert.history_periods) == ("trade", 8, 10)
        assert alert.usual_mean == 1.5 and alert.period_end == END
        assert alert.article_ids == tuple(f"id{n:03d}" for n in range(8))
        assert alert.article_titles[0] == "Story 0" and alert.article_urls[0].endswith("/a/0")
        # This run's counts are kept, every topic's, 0 included.
        kept = store.topic_counts("run", END - timedelta(hours=1), END + timedelta(hours=1))
        assert kept == {"trade": [8], "taiwan": [1], "fentanyl": [0]}
        # The same period again (a retried step) is the same alert, and counts the same.
        (again,) = topic_alerts(records, ("trade",), store, "run", None, END)
        assert again == alert
        assert store.topic_counts("run", END - timedelta(hours=1),
                                  END + timedelta(hours=1))["trade"] == [8]
    finally:
        store.close()


def test_a_late_pane_adds_to_its_window_and_alerts_once(tmp_path: Path) -> None:
    store = open_state(f"sqlite:{tmp_path / 'state.db'}")
    period = "window:s1:600"
    try:
        for n in range(1, 13):  # twelve earlier windows with one trade article each
            store.save_topic_counts(period, END - timedelta(minutes=10 * n), {"trade": 1})
        store.save_topic_counts("window:other:600", END - timedelta(minutes=10), {"trade": 50})
        on_time = [_record(n, "trade") for n in range(3)]
        assert topic_alerts(on_time, ("trade",), store, period, 600.0, END, pane=0) == []
        late = [_record(n, "trade") for n in range(3, 8)]  # the window's total is now 8
        (alert,) = topic_alerts(late, ("trade",), store, period, 600.0, END, pane=1)
        assert (alert.count, alert.period, alert.history_periods) == (8, "window", 12)
        assert alert.usual_mean == 1.0  # the other stream's windows are not this one's
        later = [_record(n, "trade") for n in range(8, 10)]  # already an alert: not again
        assert topic_alerts(later, ("trade",), store, period, 600.0, END, pane=2) == []
    finally:
        store.close()


@pytest.mark.slow
def test_a_run_writes_its_alerts_and_counts_them_in_its_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    from pipeline import demo
    from pipeline.cli import main
    from pipeline.demo.loopback import LoopbackServer, Route

    state = f"sqlite:{tmp_path / 'state.db'}"
    store = open_state(state)
    now = datetime.now(UTC)
    try:  # twelve earlier runs with one or two articles about trade
        for hour in range(1, 13):
            store.save_topic_counts("run", now - timedelta(hours=hour), {"trade": 1 + hour % 2})
    finally:
        store.close()
    (tariffs,) = [a for a in demo.sample_articles() if "tariffs-canada" in a["path"]]
    with LoopbackServer({}) as site:
        items = []
        for n in range(6):  # six stories about trade on one desk
            path = f"/business/{n}.html"
            site.routes[path] = Route(demo.render_page({**tariffs, "path": path}, site.base_url),
                                      headers={"Content-Type": "text/html; charset=utf-8"})
            items.append(f"<item><title>Tariffs, day {n}</title><link>{site.url(path)}</link>"
                         "</item>")
        site.routes["/desk.xml"] = Route(
            ('<?xml version="1.0"?><rss version="2.0"><channel><title>Desk</title>'
             + "".join(items) + "</channel></rss>").encode(),
            headers={"Content-Type": "application/rss+xml"})
        feeds = tmp_path / "feeds.yaml"
        feeds.write_text(f"feeds:\n  - url: {site.url('/desk.xml')}\n")
        out = tmp_path / "out"
        status = main(["run", "--feeds", str(feeds), "--out", str(out), f"--state={state}",
                       "--allow-private-networks"])
    assert status == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "run.json").read_text())
    assert summary["alerts"] == {"trade": 1} and "alerts   trade 1" in printed
    (written,) = out.glob("alerts-*.jsonl")
    (alert,) = [json.loads(line) for line in written.read_text().splitlines()]
    assert (alert["topic"], alert["count"], alert["period"]) == ("trade", 6, "run")
    assert alert["history_periods"] == 12 and alert["usual_mean"] == 1.5
    records = [json.loads(line) for path in out.glob("articles-*.jsonl")
               for line in path.read_text().splitlines()]
    assert sorted(alert["article_ids"]) == sorted(record["id"] for record in records)


def test_the_usual_level_is_the_mean_and_population_spread_of_the_history() -> None:
    assert (surge([], 3).mean, surge([], 3).stdev, surge([4], 4).stdev) == (0.0, 0.0, 0.0)
    assert surge([1, 3], 5).stdev == 1.0
    ten = surge(list(range(1, 11)), 30)
    assert ten.mean == 5.5 and ten.stdev == pytest.approx(2.8723, abs=1e-4)
    assert ten.threshold == pytest.approx(5.5 + 3 * 2.8723, abs=1e-3)
