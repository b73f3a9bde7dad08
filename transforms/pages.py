"""FetchPages: each new entry's article page, fetched with the one HTTP client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apache_beam as beam

from transforms.dead_letters import DEAD_LETTERS, FETCH_PAGES, dead_letter, unexpected_error
from transforms.fetch_fn import HttpFetchFn
from transforms.http import FetchError, HttpSettings, MiB, is_page_content_type
from transforms.metrics import count
from transforms.records import Entry, Page

PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"


class _FetchPageFn(HttpFetchFn):
    def process(self, entry: Entry) -> Iterator[Any]:
        try:
            response = self.get(
                entry.link, accept=PAGE_ACCEPT,
                content_type_ok=is_page_content_type,
            )
        except FetchError as error:
            yield beam.pvalue.TaggedOutput(
                DEAD_LETTERS,
                dead_letter(
                    FETCH_PAGES, error.reason, subject="entry", url=entry.link,
                    feed_url=entry.feed_url, message=str(error),
                    error_type=error.error_type, article_id=entry.article_id,
                ),
            )
            return
        except Exception as error:  # a bug or an input nobody foresaw: account for it
            yield beam.pvalue.TaggedOutput(DEAD_LETTERS, unexpected_error(
                FETCH_PAGES, error, subject="entry", url=entry.link, feed_url=entry.feed_url,
                article_id=entry.article_id))
            return
        count("pages.fetched")
        yield Page(
            entry=entry, final_url=response.url, status=response.status,
            content_type=response.content_type, body=response.body,
            fetched_at=response.fetched_at,
        )


class FetchPages(beam.PTransform):
    """Entry -> Page (main) and DeadLetter (`dead_letters`)."""

    def __init__(self, settings: HttpSettings, max_bytes: int = 10 * MiB) -> None:
        super().__init__()
        self.settings = settings
        self.max_bytes = max_bytes

    def expand(self, entries: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        return entries | "Fetch" >> beam.ParDo(
            _FetchPageFn(self.settings, self.max_bytes)
        ).with_outputs(DEAD_LETTERS, main="pages")
