"""One way to fail: an unexpected exception while working on one element becomes one dead letter.

Every stage runs its per-element work through `guarded`: the work's outputs are collected, and if
it raises, they are dropped and replaced by one `unexpected_error` dead letter naming the stage
and the lost feed or entry. The input stays accounted for, the rest of the run goes on, and the
traceback goes to the log for whoever fixes the cause. Expected failures (HTTP errors, empty
extractions...) are not exceptions: the stages output their dead letters themselves.

`StageFn` applies this on the bundle's thread; `BackgroundFn` (transforms.core.background) applies
the same function to work done on other threads or processes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar

import apache_beam as beam

from transforms.core.dead_letters import DEAD_LETTERS, dead_letter
from transforms.core.elements import (
    Article,
    DeadLetter,
    Entry,
    Feed,
    FetchedFeed,
    Page,
    TaggedArticle,
)
from transforms.core.metrics import emitted
from transforms.core.redaction import mask_userinfo

log = logging.getLogger(__name__)


def lost_input(element: Any) -> tuple[str, str, str, str]:
    """(subject, url, feed_url, article_id) of the feed or entry an element stands for."""
    if isinstance(element, TaggedArticle):
        element = element.article
    if isinstance(element, Feed):
        return "feed", element.url, element.url, ""
    if isinstance(element, FetchedFeed):
        return "feed", element.feed.url, element.feed.url, ""
    if isinstance(element, Entry):
        return "entry", element.link, element.feed_url, element.article_id
    if isinstance(element, Page | Article):
        url = element.final_url if isinstance(element, Page) else element.url
        return "entry", url, element.entry.feed_url, element.entry.article_id
    raise TypeError(f"no dead-letter subject for a {type(element).__name__}")


def unexpected_error(stage: str, element: Any, error: BaseException) -> DeadLetter:
    """The dead letter for an exception nobody foresaw while `stage` worked on `element`."""
    subject, url, feed_url, article_id = lost_input(element)
    log.warning("unexpected error at %s for %s", stage, mask_userinfo(url), exc_info=error)
    return dead_letter(
        stage, "unexpected_error", subject=subject, url=url, feed_url=feed_url,
        message=str(error) or repr(error), error_type=type(error).__name__,
        article_id=article_id,
    )


class Abandoned(Exception):  # noqa: N818  (a state of the work, not an error of the input)
    """Work for a DoFn that has been torn down: its bundle failed, nothing of it will be
    committed, and the work is dropped without a dead letter or a log line."""


def guarded(
    stage: str, element: Any, work: Callable[[], Iterable[Any]],
    if_failed: Callable[[DeadLetter], Iterable[Any]] | None = None,
) -> list[Any]:
    """All outputs of `work()` for one element, or, if it raises, one dead letter instead (and
    what `if_failed(letter)` gives, if anything).

    Outputs are collected before any is emitted, so a failure half-way through never leaves
    part of an element's results behind beside its dead letter. Abandoned work is not a
    failure of the element: `Abandoned` passes through.
    """
    try:
        return list(work())
    except Abandoned:
        raise
    except Exception as error:
        letter = unexpected_error(stage, element, error)
        also = list(if_failed(letter)) if if_failed is not None else []
        return [beam.pvalue.TaggedOutput(DEAD_LETTERS, letter), *also]


class StageFn(beam.DoFn):
    """Base of the DoFns that do a stage's work one element at a time on the bundle's thread.

    Subclasses set `stage` and implement `handle(element)`, yielding the element's outputs
    (main outputs, TaggedOutputs, Tallies); an exception there becomes one dead letter.
    """

    stage: ClassVar[str]

    def handle(self, element: Any) -> Iterable[Any]:
        raise NotImplementedError

    def if_failed(self, element: Any, letter: DeadLetter) -> Iterable[Any]:
        """What goes out besides the dead letter when `handle(element)` raised (nothing)."""
        return ()

    def process(self, element: Any) -> Iterator[Any]:
        yield from emitted(guarded(self.stage, element, lambda: self.handle(element),
                                   lambda letter: self.if_failed(element, letter)))
