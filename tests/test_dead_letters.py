"""Dead letters as a contract: every field from its arguments, a key that names what was lost,
one-line messages of bounded length, unknown codes refused, what is worth retrying, and what
each letter counts for in the run summary."""

from __future__ import annotations

from datetime import UTC, datetime

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from tests.helpers import test_pipeline
from transforms.core import CollectDeadLetters, dead_letter, is_permanent, is_permanent_reason
from transforms.core.collect_dead_letters import _counted, letter_tallies
from transforms.core.dead_letters import letter_id

AT = datetime(2025, 3, 4, 8, 0, tzinfo=UTC)
FEED = "https://news.example/feed.xml"
PAGE = "https://news.example/a.html"


def test_every_field_comes_from_its_argument() -> None:
    letter = dead_letter("fetch_pages", "http_status", subject="entry", url=PAGE, feed_url=FEED,
                         message="HTTP 404", error_type="HTTP 404", article_id="a1", at=AT)
    assert (letter.stage, letter.reason, letter.subject) == ("fetch_pages", "http_status",
                                                            "entry")
    assert (letter.url, letter.feed_url, letter.message) == (PAGE, FEED, "HTTP 404")
    assert (letter.error_type, letter.article_id, letter.at) == ("HTTP 404", "a1", AT)
    assert letter.id == letter_id("fetch_pages", "entry", FEED, "a1")


def test_without_a_time_a_letter_is_dated_now_and_its_optional_fields_are_empty() -> None:
    before = datetime.now(UTC)
    letter = dead_letter("fetch_feeds", "timeout", subject="feed", url=FEED, feed_url=FEED,
                         message="timed out")
    assert before <= letter.at <= datetime.now(UTC) and letter.at.tzinfo is UTC
    assert (letter.error_type, letter.article_id) == ("", "")


@pytest.mark.parametrize(("article_id", "lost", "url", "message", "key"), [
    ("a1", "link|title", PAGE, "m", "a1"),  # the article, when known
    ("", "link|title", PAGE, "m", "link|title"),  # else what names the entry
    ("", "", PAGE, "m", PAGE),  # else the URL
    ("", "", "", "m", "m"),  # else the message
])
def test_a_letters_key_is_the_first_thing_known_of_what_was_lost(
    article_id: str, lost: str, url: str, message: str, key: str,
) -> None:
    letter = dead_letter("parse_entries", "entry_without_link", subject="entry", url=url,
                         feed_url=FEED, message=message, article_id=article_id, lost=lost)
    assert letter.id == letter_id("parse_entries", "entry", FEED, key)


def test_a_key_with_a_lone_surrogate_still_hashes() -> None:
    assert len(letter_id("parse_entries", "entry", FEED, "bad \ud800 link")) == 32


@pytest.mark.parametrize(("field", "value", "message"), [
    ("stage", "fetch_everything", "unknown dead-letter stage 'fetch_everything'"),
    ("reason", "bad_luck", "unknown dead-letter reason 'bad_luck'"),
    ("subject", "site", "unknown dead-letter subject 'site'"),
])
def test_unknown_codes_are_refused_by_name(field: str, value: str, message: str) -> None:
    arguments = {"stage": "fetch_pages", "reason": "timeout", "subject": "entry"}
    arguments[field] = value
    with pytest.raises(ValueError, match=f"^{message}$"):
        dead_letter(arguments["stage"], arguments["reason"], subject=arguments["subject"],
                    url=PAGE, feed_url=FEED, message="m")


@pytest.mark.parametrize(("message", "shown"), [
    ("line one\n  line two\ttabbed", "line one line two tabbed"),
    ("x" * 500, "x" * 500),  # at the limit: kept whole
    ("x" * 501, "x" * 499 + "…"),  # over it: cut to the limit, marked
])
def test_messages_are_one_line_of_at_most_500_characters(message: str, shown: str) -> None:
    letter = dead_letter("fetch_pages", "timeout", subject="entry", url=PAGE, feed_url=FEED,
                         message=message)
    assert letter.message == shown


@pytest.mark.parametrize(("reason", "error_type", "permanent"), [
    ("http_status", "HTTP 404", True), ("http_status", "HTTP 410", True),
    ("http_status", "HTTP 429", False), ("http_status", "HTTP 408", False),
    ("http_status", "HTTP 503", False), ("timeout", "", False),
    ("connection_error", "", False), ("robots_disallowed", "robots.txt", True),
    ("bad_content_type", "", True), ("empty_extraction", "", True),
])
def test_what_is_not_worth_asking_for_again(reason: str, error_type: str,
                                            permanent: bool) -> None:
    assert is_permanent_reason(reason, error_type) is permanent
    letter = dead_letter("fetch_pages", reason, subject="entry", url=PAGE, feed_url=FEED,
                         message="m", error_type=error_type)
    assert is_permanent(letter) is permanent


@pytest.mark.parametrize(("subject", "lost"), [("feed", "feeds"), ("entry", "entries")])
def test_a_letter_counts_for_its_stage_and_reason_and_for_what_it_lost(
    subject: str, lost: str,
) -> None:
    letter = dead_letter("fetch_feeds", "timeout", subject=subject, url=FEED, feed_url=FEED,
                         message="m")
    tallies = letter_tallies(letter)
    assert [tally.name for tally in tallies] == ["dead_letters.fetch_feeds.timeout",
                                                 f"{lost}.dead_letter",
                                                 *(["feeds.failed.timeout"] * (lost == "feeds"))]
    outputs = list(_counted(letter))
    assert outputs[0] is letter
    assert [(output.tag, output.value) for output in outputs[1:]
            if isinstance(output, beam.pvalue.TaggedOutput)] == [("tallies", t) for t in tallies]


def test_every_stages_letters_are_collected_and_counted_by_reason() -> None:
    feed_lost = dead_letter("fetch_feeds", "timeout", subject="feed", url=FEED, feed_url=FEED,
                            message="m")
    page_lost = dead_letter("fetch_pages", "http_status", subject="entry", url=PAGE,
                            feed_url=FEED, message="m", error_type="HTTP 404")
    with test_pipeline() as pipeline:
        first = pipeline | "Feeds" >> beam.Create([feed_lost])
        second = pipeline | "Pages" >> beam.Create([page_lost, page_lost])
        collected = (first, second) | CollectDeadLetters()
        assert_that(collected.letters | beam.Map(lambda letter: letter.stage),
                    equal_to(["fetch_feeds", "fetch_pages", "fetch_pages"]), label="Letters")
        assert_that(collected.tallies | beam.Map(lambda tally: tally.name), equal_to([
            "dead_letters.fetch_feeds.timeout", "feeds.dead_letter", "feeds.failed.timeout",
            "dead_letters.fetch_pages.http_status", "entries.dead_letter",
            "dead_letters.fetch_pages.http_status", "entries.dead_letter"]), label="Tallies")


def test_collecting_keeps_its_step_names() -> None:
    pipeline = test_pipeline()
    letters = pipeline | beam.Create([dead_letter("fetch_feeds", "timeout", subject="feed",
                                                  url=FEED, feed_url=FEED, message="m")])
    _ = (letters,) | "DeadLetters" >> CollectDeadLetters()
    names = {transform.unique_name
             for transform in pipeline.to_runner_api().components.transforms.values()}
    assert {"DeadLetters/Flatten", "DeadLetters/CountByReason"} <= names
