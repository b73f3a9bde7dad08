"""The whole batch pipeline, against the demo sample site served on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from pipeline import demo
from pipeline.demo.loopback import LoopbackServer, Route
from pipeline.graph.batch import BatchConfig, build_batch
from pipeline.job.run_batch import run_batch
from tests.helpers import loopback_core, test_pipeline
from transforms.core import CreateMany, Feed
from transforms.topics import load_taxonomy

pytestmark = pytest.mark.slow  # every test runs the whole pipeline

SEED_PATH = "/world/2023/06/18/blinken-meets-qin-gang-beijing.html"
# Text of the site's chrome around every article: none of it may reach a record.
CHROME = (
    "We use cookies", "Subscribe from $1 a week", "Search the Ledger", "Refinance today",
    "Related coverage", "G7 leaders wrap up", "Get the Morning Ledger", "Comments (3)",
    "Great reporting as always", "Mark my words", "Five stocks analysts say",
    "All rights reserved", "Privacy policy", "Share on X",
)


@pytest.fixture
def sample_site() -> Iterator[LoopbackServer]:
    site = demo.sample_server()
    yield site
    site.stop()


def test_records_and_dead_letters_under_test_pipeline(
    sample_site: LoopbackServer, tmp_path: Path
) -> None:
    base = sample_site.base_url
    with test_pipeline() as p:
        config = BatchConfig(out=str(tmp_path), core=loopback_core())
        outputs = build_batch(p, demo.sample_feeds(sample_site), config)
        topics = outputs.records | "TitleTopics" >> beam.Map(
            lambda r: (r.title, tuple(sorted((t.name, t.relevance) for t in r.topics)))
        )
        assert_that(topics, equal_to([
            ("Blinken meets China's Qin Gang in Beijing",
             (("fentanyl", "mention"), ("taiwan", "mention"), ("trade", "mention"))),
            ("Taiwan elects Lai Ching-te as president in vote watched closely by Beijing",
             (("taiwan", "about"),)),
            ("US quadruples tariffs on Chinese electric vehicles", (("trade", "about"),)),
            ("Tariffs on Canada, Mexico and China take effect, citing fentanyl flows",
             (("fentanyl", "about"), ("trade", "about"))),
            ("Overdose deaths fell last year for the first time since 2018",
             (("fentanyl", "about"),)),
            ("City council approves budget with more money for buses and parks", ()),
        ]), label="RecordTopics")
        # A story in two feeds, once behind tracking parameters, becomes one record.
        assert_that(outputs.records | "CanonicalUrls" >> beam.Map(lambda r: r.canonical_url),
                    equal_to([
                        f"{base}{SEED_PATH}",
                        f"{base}/asia/2024/01/13/taiwan-elects-lai-ching-te.html",
                        f"{base}/business/2024/05/14/us-raises-tariffs-chinese-evs.html",
                        f"{base}/business/2025/03/04/tariffs-canada-mexico-china-fentanyl.html",
                        f"{base}/us/2024/05/15/overdose-deaths-fall.html",
                        f"{base}/us/2024/06/02/harbour-city-budget-vote.html",
                    ]), label="CanonicalUrls")
        letters = outputs.dead_letters | "StageReason" >> beam.Map(
            lambda d: (d.stage, d.reason, d.subject, d.url, d.error_type)
        )
        assert_that(letters, equal_to([
            ("fetch_pages", "http_status", "entry",
             f"{base}/world/2024/02/01/pacific-forum-ends.html", "HTTP 404"),
            ("fetch_pages", "bad_content_type", "entry", f"{base}{demo.PDF_PATH}", "HTTP 200"),
            ("parse_entries", "entry_without_link", "entry", "", ""),
        ]), label="DeadLetters")


def test_seed_article_record(sample_site: LoopbackServer, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = run_batch(
        PipelineOptions(["--allow-private-networks", "--state=none"]),
        demo.sample_feeds(sample_site),
        load_taxonomy(), str(out),
    )
    records = [json.loads(line) for f in out.glob("articles-*.jsonl") for line in f.open()]
    seed = [r for r in records if r["url"].endswith(SEED_PATH)]
    assert len(seed) == 1
    record = seed[0]
    assert sorted(t["name"] for t in record["topics"]) == ["fentanyl", "taiwan", "trade"]
    assert all(t["relevance"] in ("about", "mention") and t["evidence"] for t in record["topics"])
    article = next(a for a in demo.sample_articles() if a["path"] == SEED_PATH)
    for paragraph in article["paragraphs"]:
        assert paragraph in record["text"]
    for chrome in CHROME:
        assert chrome not in record["text"], chrome
    assert record["title"] == "Blinken meets China's Qin Gang in Beijing"
    assert record["published_at"] == "2023-06-18T03:40:00Z"
    assert record["published_source"] == "feed"
    assert record["language"] == "en"
    assert record["feed_title"] == "The Harbour Ledger - World"
    assert record["schema_version"] == 1
    assert record["word_count"] > 300
    assert record["content_fingerprint"].startswith("sha256:")
    # Accounting: every feed and every entry is a record, a duplicate or a dead letter.
    assert summary["accounted"] == {"feeds": True, "entries": True}
    assert summary["feeds"] == {"configured": 3, "fetched": 3, "not_modified": 0,
                                "dead_letter": 0, "ill_formed_kept": 1,
                                "ill_formed_reasons": {"SAXParseException": 1}}
    assert summary["entries"] == {"parsed": 11, "records": 6, "duplicates": 2,
                                  "seen_before": 0, "dead_letters": 3}
    assert len(records) == summary["entries"]["records"]
    letters = [json.loads(line) for f in out.glob("dead-letters-*.jsonl") for line in f.open()]
    assert len(letters) == 3
    assert json.loads((out / "run.json").read_text())["entries"]["records"] == 6


def test_an_unreachable_page_with_full_text_in_the_feed_still_makes_a_record(
    tmp_path: Path,
) -> None:
    story = "<p>" + "Customs officers seized fentanyl pills at the border crossing. " * 15 + "</p>"
    with LoopbackServer({}) as site:
        site.routes["/feed.xml"] = Route(
            ("<?xml version='1.0'?><rss version='2.0' xmlns:content="
             "'http://purl.org/rss/1.0/modules/content/'><channel><title>Wire</title><item>"
             f"<title>Seizure at the border</title><link>{site.url('/gone.html')}</link>"
             f"<content:encoded><![CDATA[{story}]]></content:encoded></item></channel></rss>"
             ).encode(), headers={"Content-Type": "application/rss+xml"})
        summary = run_batch(PipelineOptions(["--allow-private-networks", "--state=none"]),
                            (Feed(site.url("/feed.xml")),), load_taxonomy(), str(tmp_path))
    records = [json.loads(line) for f in tmp_path.glob("articles-*.jsonl") for line in f.open()]
    assert [r["extraction_method"] for r in records] == ["feed"]
    assert records[0]["text"].startswith("Customs officers seized fentanyl")
    assert summary["pages_replaced_by_feed_text"] == {"http_status": 1}
    assert summary["entries"]["dead_letters"] == 0 and summary["accounted"]["entries"]


def test_create_many_gives_every_value_once_with_its_type() -> None:
    feeds = tuple(Feed(f"http://127.0.0.1:8000/feed/{n}.xml", index=n, tags=("t",))
                  for n in range(2_000))
    with test_pipeline() as p:
        created = p | CreateMany(feeds, Feed)
        assert created.element_type is Feed
        assert_that(created, equal_to(list(feeds)))
