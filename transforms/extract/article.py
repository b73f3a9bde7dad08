"""Article extraction: trafilatura over the page bytes, merged with what the feed said.

`extract_article` is a plain function: page in, Article out, or an `ExtractionError` whose
`reason` is a dead-letter reason code. ExtractArticles runs it in isolated worker processes.
"""

from __future__ import annotations

import codecs
import contextlib
import email.utils
import functools
import re
import time
from datetime import UTC, datetime, timedelta

import lxml.etree
import lxml.html
import py3langid
import trafilatura
from lxml.html import HtmlElement

from transforms.core import Article, Entry, Page, canonical_url, clean_whitespace
from transforms.extract.boilerplate import CAPTIONS, without_boilerplate, without_headline
from transforms.extract.errors import ExtractionError
from transforms.extract.metadata import (
    EMPTY_METADATA,
    PageMetadata,
    clean_authors,
    page_metadata,
)

# Dates outside this range are metadata errors (a CMS default, a typo), not publication dates.
EARLIEST_PLAUSIBLE = datetime(1990, 1, 1, tzinfo=UTC)
FUTURE_TOLERANCE = timedelta(days=1)
# A first pass shorter than this is implausible for a news story: try again for recall.
SHORT_TEXT_WORDS = 150
# The feed's own full text wins when the page yields less than this share of it.
FEED_TEXT_SHARE = 0.5

_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.IGNORECASE)
_URL_DATE = re.compile(r"/((?:19|20)\d\d)[/-](0[1-9]|1[0-2])[/-](0[1-9]|[12]\d|3[01])(?:/|\b)")


def extract_article(page: Page, now: datetime | None = None) -> Article:
    """Extract the article body and metadata from a fetched page.

    The body: trafilatura (comments excluded); a recall-oriented second pass when that is
    implausibly short; the feed's full content when the page could not be fetched or extracted,
    or yields much less than the feed carried. Metadata: the page's own wins and the feed fills
    its gaps, except for the publication time, where the feed's full timestamp beats the page's
    date (known to the day only).
    """
    started = time.perf_counter()
    entry = page.entry
    feed_text = entry.full_text
    if not page.body and feed_text:  # the page could not be fetched: the feed's text stands in
        meta, text, method = EMPTY_METADATA, feed_text, "feed"
    else:
        try:
            tree = _parse_html(page)
            meta = page_metadata(tree, page.final_url)
            text, method = _body(tree, page.final_url)
        except Exception as exc:  # lxml and trafilatura raise all kinds of errors on bad HTML
            if not feed_text:
                if isinstance(exc, ExtractionError):
                    raise
                raise ExtractionError("extraction_error", f"{type(exc).__name__}: {exc}",
                                      type(exc).__name__) from exc
            meta, text, method = EMPTY_METADATA, feed_text, "feed"
        text = without_boilerplate(
            without_headline(text, meta.titles + ((entry.title,) if entry.title else ()))
        )
        if feed_text and len(text.split()) < FEED_TEXT_SHARE * len(feed_text.split()):
            text, method = feed_text, "feed"
    if not text:
        raise ExtractionError("empty_extraction", "no article text in the page or the feed")
    published_at, published_source = _published(
        entry, meta, page, now or datetime.now(UTC)
    )
    return Article(
        entry=entry,
        url=page.final_url,
        title=meta.title or entry.title,
        authors=meta.authors or clean_authors(list(entry.authors)),
        published_at=published_at,
        published_source=published_source,
        fetched_at=page.fetched_at,
        language=meta.language or detect_language(text),
        site_name=meta.site_name,
        summary=entry.summary or meta.description,
        text=text,
        extraction_method=method,
        canonical_url=canonical_url(meta.canonical_url) if meta.canonical_url else None,
        image=meta.image,
        paywalled=meta.paywalled,
        extraction_seconds=time.perf_counter() - started,
    )


def _body(tree: HtmlElement, url: str) -> tuple[str, str]:
    """The article text and the method that produced it."""
    text = _trafilatura_text(tree, url)
    if len(text.split()) >= SHORT_TEXT_WORDS:
        return text, "trafilatura"
    recall = _trafilatura_text(tree, url, favor_recall=True)
    if len(recall.split()) > len(text.split()):
        return recall, "trafilatura_recall"
    return text, "trafilatura"


def _trafilatura_text(tree: HtmlElement, url: str, *, favor_recall: bool = False) -> str:
    # bare_extraction cleans a copy of the tree, so the same tree serves both passes. The
    # recall pass skips trafilatura's fallback extractors (readability, jusText), which the
    # first pass has already weighed: on the corpus its texts are the same, at 2/3 of the time.
    document = trafilatura.bare_extraction(
        tree, url=url, include_comments=False, include_tables=True, with_metadata=False,
        prune_xpath=CAPTIONS, favor_recall=favor_recall, fast=favor_recall,
    )
    return clean_whitespace(getattr(document, "text", None) or "") if document else ""


def detect_language(text: str) -> str | None:
    """The language of a text that did not declare one (ISO 639-1), or None if too short."""
    if len(text) < 50:
        return None
    language, _ = py3langid.classify(text[:2000])
    return str(language)


def _parse_html(page: Page) -> HtmlElement:
    """Parse the page. With a charset from the server, lxml parses the bytes in it directly
    (trafilatura's own loader decodes, sniffs and repairs first, which costs twice as long);
    otherwise, or if that yields no document, trafilatura's loader sniffs BOM and meta."""
    match = _CHARSET.search(page.content_type)
    if match:
        with contextlib.suppress(LookupError, ValueError, lxml.etree.ParserError):
            encoding = codecs.lookup(match.group(1)).name
            tree = lxml.html.fromstring(page.body, parser=_parser(encoding))
            if tree is not None and tree.find(".//body") is not None:
                return tree
    loaded: HtmlElement | None = trafilatura.load_html(page.body)
    if loaded is None:
        raise ExtractionError("empty_extraction", "the page is not parseable HTML")
    return loaded


@functools.lru_cache(maxsize=16)
def _parser(encoding: str) -> lxml.html.HTMLParser:
    # The settings of trafilatura's own parser, in the server's encoding. Invalid bytes are
    # replaced by libxml2's decoder rather than failing the page.
    return lxml.html.HTMLParser(  # type: ignore[call-arg]  # lxml-stubs lack default_doctype
        collect_ids=False, default_doctype=False, encoding=encoding, remove_comments=True,
        remove_pis=True,
    )


def _published(
    entry: Entry, meta: PageMetadata, page: Page, now: datetime
) -> tuple[datetime | None, str]:
    """The publication time and where it came from, trying each source in order of trust."""
    def plausible(value: datetime | None) -> bool:
        return value is not None and EARLIEST_PLAUSIBLE <= value <= now + FUTURE_TOLERANCE

    candidates = (
        (entry.published_at, "feed"),
        (meta.date, "page"),
        (_url_date(page.final_url) or _url_date(entry.link), "url"),
        (entry.updated_at, "feed"),
        (_http_date(page.last_modified), "http"),
    )
    for value, source in candidates:
        if plausible(value):
            return value, source
    return None, "none"


def _url_date(url: str) -> datetime | None:
    match = _URL_DATE.search(url)
    if not match:
        return None
    year, month, day = (int(part) for part in match.groups())
    try:
        return datetime(year, month, day, tzinfo=UTC)
    except ValueError:
        return None


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
