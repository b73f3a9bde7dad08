"""ExtractArticles: trafilatura over the page bytes, merged with what the feed said.

`extract_article` is a plain function: page in, Article out, or an `ExtractionError` whose
`reason` is a dead-letter reason code.
"""

from __future__ import annotations

import codecs
import contextlib
import email.utils
import functools
import re
from collections.abc import Iterator
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from typing import Any

import apache_beam as beam
import lxml.etree
import lxml.html
import py3langid
import trafilatura
from lxml.html import HtmlElement

from transforms.background import BackgroundFn, Emitter
from transforms.dead_letters import (
    DEAD_LETTERS,
    EXTRACT_ARTICLES,
    dead_letter,
    unexpected_error,
)
from transforms.dedup import canonical_url
from transforms.isolation import (
    DEFAULT_ISOLATION,
    IsolationSettings,
    ProcessPool,
    TaskTimeout,
    WorkerCrashed,
)
from transforms.metadata import EMPTY_METADATA, PageMetadata, clean_authors, page_metadata
from transforms.records import Article, Entry, Page
from transforms.text import clean_whitespace, html_to_text

# Dates outside this range are metadata errors (a CMS default, a typo), not publication dates.
EARLIEST_PLAUSIBLE = datetime(1990, 1, 1, tzinfo=UTC)
FUTURE_TOLERANCE = timedelta(days=1)
# Image captions and credits: part of the page, not of the story a reader reads.
CAPTIONS = ["//figcaption", "//figure//*[contains(@class, 'caption')]"]
# A first pass shorter than this is implausible for a news story: try again for recall.
SHORT_TEXT_WORDS = 150
# The feed's own full text wins when the page yields less than this share of it.
FEED_TEXT_SHARE = 0.5
FEED_TEXT_MIN_WORDS = 80

# Lines that are furniture around a story, not part of it: photo credits, copyright notices,
# signatures of embedded social-media posts, "read also" links (in the languages of the news we
# see most), calls to subscribe, share, print or comment, update stamps, and tag-list headings.
_BOILERPLATE_LINE = re.compile(
    r"^(?:(?:photos?|images?|pictures?|fotos?|bild|foto|credit)s?\s*[:\u00a9]"
    r"|.{0,120}\u00a9|.{0,120}\bcopyright\b"
    r"|.*pic\.twitter\.com/"
    r"|[\u2014\u2013-]\s.{1,80}\(@\w{1,30}\)\s.{0,30}\d{4}$"
    r"|(?:read|see) (?:more|also)\b.{0,150}$|related(?: articles?| stories| coverage)?:.{0,150}$"
    r"|(?:les ogs\u00e5|lesen sie auch|lire aussi|leia tamb\u00e9m|lee tambi\u00e9n|"
    r"leggi anche|lees ook|l\u00e4s ocks\u00e5|mehr zum thema)\b.{0,150}$"
    r"|(?:sign up|subscribe|join our|follow us|share this|click here|order reprints|"
    r"print article|advertisement|anzeige|publicidade)\b.{0,100}$"
    r"|(?:updated|published|posted|aktualisiert|ver\u00f6ffentlicht)(?: at| on)?[: ]"
    r".{0,40}\d.{0,20}$"
    r"|(?:tags|categories|categorias|schlagw\u00f6rter)\s*:?$)",
    re.IGNORECASE,
)
_SENTENCE_ENDS = (".", "!", "?", "\"", "\u201d", "\u2019", "'", ")", "\u3002", ":", "\u00bb")
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.IGNORECASE)
_URL_DATE = re.compile(r"/((?:19|20)\d\d)[/-](0[1-9]|1[0-2])[/-](0[1-9]|[12]\d|3[01])(?:/|\b)")


class ExtractionError(Exception):
    """No usable article could be extracted; `reason` is a dead-letter reason code and
    `error_type` names the underlying error (it crosses process boundaries, causes do not)."""

    def __init__(self, reason: str, message: str, error_type: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.error_type = error_type or type(self).__name__

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.reason, str(self), self.error_type))


def extract_article(page: Page, now: datetime | None = None) -> Article:
    """Extract the article body and metadata from a fetched page.

    The body: trafilatura (comments excluded); a recall-oriented second pass when that is
    implausibly short; the feed's full content when the page could not be fetched or extracted,
    or yields much less than the feed carried. Metadata: the page's own wins and the feed fills
    its gaps, except for the publication time, where the feed's full timestamp beats the page's
    date (known to the day only).
    """
    entry = page.entry
    feed_text = feed_full_text(entry)
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
        text = _without_boilerplate(
            _without_headline(text, meta.titles + ((entry.title,) if entry.title else ()))
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
    )


def feed_full_text(entry: Entry) -> str:
    """The article text the feed itself carried, if it is long enough to stand for the page."""
    text = html_to_text(entry.content_html)
    return text if len(text.split()) >= FEED_TEXT_MIN_WORDS else ""


def _body(tree: HtmlElement, url: str) -> tuple[str, str]:
    """The article text and the method that produced it."""
    text = _trafilatura_text(tree, url)
    if len(text.split()) >= SHORT_TEXT_WORDS:
        return text, "trafilatura"
    recall = _trafilatura_text(tree, url, favor_recall=True)
    if len(recall.split()) > len(text.split()):
        return recall, "trafilatura_recall"
    return text, "trafilatura"


def _trafilatura_text(tree: HtmlElement, url: str, **tuning: bool) -> str:
    # bare_extraction cleans a copy of the tree, so the same tree serves both passes.
    document = trafilatura.bare_extraction(
        tree, url=url, include_comments=False, include_tables=True, with_metadata=False,
        prune_xpath=CAPTIONS, **tuning,
    )
    return clean_whitespace(getattr(document, "text", None) or "") if document else ""


def detect_language(text: str) -> str | None:
    """The language of a text that did not declare one (ISO 639-1), or None if too short."""
    if len(text) < 50:
        return None
    language, _ = py3langid.classify(text[:2000])
    return str(language)


def _without_headline(text: str, titles: tuple[str, ...]) -> str:
    """The body without a first line that repeats the headline (the page's <h1>)."""
    first, _, rest = text.partition("\n")
    if any(_comparable(first) == _comparable(title) for title in titles if title):
        return rest.strip()
    return text


def _without_boilerplate(text: str) -> str:
    """The body without credit, copyright and embedded-post signature lines, and without a
    tail of short lines that are not sentences (related links, tag lists)."""
    lines = [line for line in text.split("\n")
             if len(line) > 200 or not _BOILERPLATE_LINE.match(line)]
    while len(lines) > 3 and _looks_like_link(lines[-1]):
        lines.pop()
    return "\n".join(lines)


def _looks_like_link(line: str) -> bool:
    stripped = line.strip()
    return len(stripped.split()) < 12 and not stripped.endswith(_SENTENCE_ENDS)


def _comparable(value: str) -> str:
    return " ".join(re.findall(r"\w+", value.casefold()))


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
    tree = trafilatura.load_html(page.body)
    if tree is None:
        raise ExtractionError("empty_extraction", "the page is not parseable HTML")
    return tree


@functools.lru_cache(maxsize=16)
def _parser(encoding: str) -> lxml.html.HTMLParser:
    # The settings of trafilatura's own parser, in the server's encoding. Invalid bytes are
    # replaced by libxml2's decoder rather than failing the page.
    return lxml.html.HTMLParser(collect_ids=False, default_doctype=False, encoding=encoding,
                                remove_comments=True, remove_pis=True)


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
    try:
        return datetime(*(int(part) for part in match.groups()), tzinfo=UTC)
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


class _ExtractFn(BackgroundFn):
    """Hands pages to the isolated extraction processes and turns outcomes into outputs."""

    def __init__(self, isolation: IsolationSettings) -> None:
        super().__init__(max_pending=4 * isolation.process_count)
        self.isolation = isolation
        self._pool: ProcessPool | None = None

    def setup(self) -> None:
        self._pool = ProcessPool(extract_article, self.isolation)
        self._pool.warm_up()  # while the pages of this stage are still being fetched

    def teardown(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def process(
        self, page: Page, window: Any = beam.DoFn.WindowParam,
        timestamp: Any = beam.DoFn.TimestampParam,
    ) -> Iterator[Any]:
        assert self._pool is not None
        emit = self.emitter(window, timestamp)
        delivered: Future = Future()

        def deliver(outcome: Future) -> None:
            try:
                _deliver(page, outcome, emit, self.isolation.timeout)
            except BaseException as error:  # a bug here must fail the bundle, not vanish
                delivered.set_exception(error)
            else:
                delivered.set_result(None)

        self._pool.submit(page).add_done_callback(deliver)
        yield from self.started([delivered])


def _deliver(page: Page, outcome: Future, emit: Emitter, timeout: float) -> None:
    entry = page.entry
    error = outcome.exception()
    if error is None:
        article = outcome.result()
        emit.count(f"extraction.{article.extraction_method}")
        emit.output(article)
        return
    if isinstance(error, ExtractionError):
        reason, message, error_type = error.reason, str(error), error.error_type
    elif isinstance(error, TaskTimeout):
        reason, message = "extraction_timeout", f"extraction took over {timeout:g}s"
        error_type = "TaskTimeout"
    elif isinstance(error, WorkerCrashed):
        reason, message, error_type = "extraction_crashed", str(error), "WorkerCrashed"
    else:  # a bug or an input nobody foresaw: account for it
        emit.output(unexpected_error(EXTRACT_ARTICLES, error, subject="entry",  # type: ignore[arg-type]
                                     url=page.final_url, feed_url=entry.feed_url,
                                     article_id=entry.article_id), DEAD_LETTERS)
        return
    emit.output(dead_letter(
        EXTRACT_ARTICLES, reason, subject="entry", url=page.final_url,
        feed_url=entry.feed_url, message=message, error_type=error_type,
        article_id=entry.article_id,
    ), DEAD_LETTERS)


class ExtractArticles(beam.PTransform):
    """Page -> Article (main) and DeadLetter (`dead_letters`), extracted in isolated worker
    processes (one per core by default) with a time limit per page."""

    def __init__(self, isolation: IsolationSettings = DEFAULT_ISOLATION) -> None:
        super().__init__()
        self.isolation = isolation

    def expand(self, pages: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        return pages | "Extract" >> beam.ParDo(_ExtractFn(self.isolation)).with_outputs(
            DEAD_LETTERS, main="articles"
        )
