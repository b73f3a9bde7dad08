"""ExtractArticles: `extract_article` in isolated worker processes, outcomes as outputs."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import apache_beam as beam

from transforms.core import (
    DEAD_LETTERS,
    DEFAULT_ISOLATION,
    EXTRACT_ARTICLE,
    EXTRACT_ARTICLES,
    TALLIES,
    Article,
    Composite,
    IsolationSettings,
    Measure,
    Page,
    Place,
    PooledFn,
    Tally,
    TaskTimeout,
    WorkerCrashed,
    dead_letter,
)
from transforms.extract.errors import ExtractionError


def outcome_outputs(page: Page, outcome: Future[Article], timeout: float) -> Iterator[Any]:
    """The outputs of one page's extraction: the article, or a dead letter saying why not.
    An error nobody foresaw is raised again, for the stage's one way to fail."""
    try:
        article = outcome.result()
    except ExtractionError as error:
        reason, message, error_type = error.reason, str(error), error.error_type
    except TaskTimeout:
        reason, message = "extraction_timeout", f"extraction took over {timeout:g}s"
        error_type = "TaskTimeout"
    except WorkerCrashed as error:
        reason, message, error_type = "extraction_crashed", str(error), "WorkerCrashed"
    else:
        yield Tally(f"extraction.{article.extraction_method}")
        yield Measure("extraction.ms", round(article.extraction_seconds * 1000))
        yield article
        return
    entry = page.entry
    yield beam.pvalue.TaggedOutput(DEAD_LETTERS, dead_letter(
        EXTRACT_ARTICLES, reason, subject="entry", url=page.final_url,
        feed_url=entry.feed_url, message=message, error_type=error_type,
        article_id=entry.article_id,
    ))


@dataclasses.dataclass(eq=False)
class _ExtractFn(PooledFn):
    """Hands pages to the worker processes and turns outcomes into outputs."""

    stage = EXTRACT_ARTICLES

    def process(
        self, page: Page, window: Any = beam.DoFn.WindowParam,
        timestamp: Any = beam.DoFn.TimestampParam,
    ) -> Iterator[Any]:
        timeout = self.isolation.timeout
        yield from self.run_in_worker(EXTRACT_ARTICLE, page, Place(window, timestamp),
                                      lambda outcome: outcome_outputs(page, outcome, timeout))


@dataclasses.dataclass(eq=False)
class ExtractArticles(Composite):
    """Page -> Article (main) and DeadLetter (`dead_letters`), extracted in isolated worker
    processes with a time limit per page.

    With `spread`, pages are redistributed across the runner's workers first: the fetch stage
    keeps each host on one worker, so without it all of a big host's pages would be extracted
    where they were fetched. On one worker process there is nothing to spread, and leaving the
    step out lets extraction start while pages are still being fetched.
    """

    isolation: IsolationSettings = DEFAULT_ISOLATION
    spread: bool = False

    def expand(self, pages: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        if self.spread:
            pages = pages | "Spread" >> beam.Reshuffle()
        return pages | "Extract" >> beam.ParDo(_ExtractFn(self.isolation)).with_outputs(
            DEAD_LETTERS, TALLIES, main="articles"
        )
