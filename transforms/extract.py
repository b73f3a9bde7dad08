"""ExtractArticles: trafilatura over the page bytes, merged with what the feed said.

`extract_article` is a plain function: page in, Article out, or an `ExtractionError` whose
`reason` is a dead-letter reason code.
"""

from __future__ import annotations

import codecs
import contextlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import apache_beam as beam
import trafilatura
from lxml.html import HtmlElement

from transforms.dead_letters import (
    DEAD_LETTERS,
    EXTRACT_ARTICLES,
    dead_letter,
    unexpected_error,
)
from transforms.records import Article, Page
from transforms.text import clean_whitespace

# Dates outside this range are metadata errors (a CMS default, a typo), not publication dates.
EARLIEST_PLAUSIBLE = datetime(1990, 1, 1, tzinfo=UTC)
FUTURE_TOLERANCE = timedelta(days=1)

_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.IGNORECASE)
_BYLINE_PREFIX = re.compile(r"^(?:by|von|par|por|di|door)\s+", re.IGNORECASE)
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")


class ExtractionError(Exception):
    """No usable article could be extracted; `reason` is a dead-letter reason code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def extract_article(page: Page, now: datetime | None = None) -> Article:
    """Extract the article body and metadata from a fetched page.

    Page metadata wins, feed values fill its gaps; except for the publication time, where the
    feed's full timestamp is preferred to the page's date (which trafilatura gives to the day).
    """
    entry = page.entry
    try:
        tree = _parse_html(page)
        declared_language = _declared_language(tree)
        document = trafilatura.bare_extraction(
            tree,
            url=page.final_url,
            include_comments=False,
            include_tables=True,
            with_metadata=True,
        )
    except ExtractionError:
        raise
    except Exception as exc:  # lxml and trafilatura raise a wide range of errors on bad HTML
        raise ExtractionError("extraction_error", f"{type(exc).__name__}: {exc}") from exc
    if document is None:
        raise ExtractionError("empty_extraction", "trafilatura found no article in the page")
    title = _clean(document.title) or entry.title
    text = _without_headline(clean_whitespace(getattr(document, "text", None) or ""), title)
    if not text:
        raise ExtractionError("empty_extraction", "trafilatura found no article text")
    published_at, published_source = _published(
        entry.published_at, entry.updated_at, getattr(document, "date", None),
        now or datetime.now(UTC),
    )
    return Article(
        entry=entry,
        url=page.final_url,
        title=title,
        authors=_authors(document.author) or entry.authors,
        published_at=published_at,
        published_source=published_source,
        fetched_at=page.fetched_at,
        language=declared_language,
        site_name=_clean(document.sitename),
        summary=entry.summary or _clean(document.description),
        text=text,
    )


def _without_headline(text: str, title: str | None) -> str:
    """The body without a first line that repeats the headline (the page's <h1>)."""
    first, _, rest = text.partition("\n")
    if title and _comparable(first) == _comparable(title):
        return rest.strip()
    return text


def _comparable(value: str) -> str:
    return " ".join(re.findall(r"\w+", value.casefold()))


def _parse_html(page: Page) -> HtmlElement:
    """Parse the page, decoding with the charset the server declared when there is one."""
    html: bytes | str = page.body
    match = _CHARSET.search(page.content_type)
    if match:
        # An unknown charset name: leave the bytes for trafilatura to sniff.
        with contextlib.suppress(LookupError):
            html = page.body.decode(codecs.lookup(match.group(1)).name, errors="replace")
    tree = trafilatura.load_html(html)
    if tree is None:
        raise ExtractionError("empty_extraction", "the page is not parseable HTML")
    return tree


def _declared_language(tree: HtmlElement) -> str | None:
    """The page's declared language: <html lang>, else Content-Language or og:locale meta."""
    candidates = [tree.get("lang"), tree.get("{http://www.w3.org/XML/1998/namespace}lang")]
    candidates += tree.xpath(
        "//meta[translate(@http-equiv,'CONTENT-LANGUAGE','content-language')"
        "='content-language']/@content | //meta[@property='og:locale']/@content"
    )
    for candidate in candidates:
        if isinstance(candidate, str):
            candidate = candidate.strip().split(",")[0].strip()
            if _LANGUAGE.match(candidate):
                return candidate.replace("_", "-").split("-")[0].lower()
    return None


def _published(
    feed_published: datetime | None,
    feed_updated: datetime | None,
    page_date: str | None,
    now: datetime,
) -> tuple[datetime | None, str]:
    def plausible(value: datetime | None) -> bool:
        return value is not None and EARLIEST_PLAUSIBLE <= value <= now + FUTURE_TOLERANCE

    if plausible(feed_published):
        return feed_published, "feed"
    page_day = _page_date(page_date)
    if plausible(page_day):
        return page_day, "page"
    if plausible(feed_updated):
        return feed_updated, "feed"
    return None, "none"


def _page_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(
        UTC
    )


def _authors(value: str | None) -> tuple[str, ...]:
    """trafilatura joins authors with "; "; split them and drop a leading "By"."""
    if not value:
        return ()
    names = (_BYLINE_PREFIX.sub("", part.strip()) for part in value.split(";"))
    return tuple(dict.fromkeys(name for name in names if name))


def _clean(value: str | None) -> str | None:
    return clean_whitespace(value) or None if value else None


class _ExtractFn(beam.DoFn):
    def process(self, page: Page) -> Iterator[Any]:
        entry = page.entry
        try:
            article = extract_article(page)
        except ExtractionError as failure:
            yield beam.pvalue.TaggedOutput(
                DEAD_LETTERS,
                dead_letter(
                    EXTRACT_ARTICLES, failure.reason, subject="entry", url=page.final_url,
                    feed_url=entry.feed_url, message=str(failure),
                    error_type=type(failure.__cause__ or failure).__name__,
                    article_id=entry.article_id,
                ),
            )
            return
        except Exception as error:  # a bug or an input nobody foresaw: account for it
            yield beam.pvalue.TaggedOutput(DEAD_LETTERS, unexpected_error(
                EXTRACT_ARTICLES, error, subject="entry", url=page.final_url,
                feed_url=entry.feed_url, article_id=entry.article_id))
            return
        yield article


class ExtractArticles(beam.PTransform):
    """Page -> Article (main) and DeadLetter (`dead_letters`)."""

    def expand(self, pages: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        return pages | "Extract" >> beam.ParDo(_ExtractFn()).with_outputs(
            DEAD_LETTERS, main="articles"
        )
