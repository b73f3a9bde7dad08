"""TagTopics: every article tagged by the taxonomy, compiled once per worker."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import apache_beam as beam

from transforms.core import (
    DEAD_LETTERS,
    TAG_TOPICS,
    Article,
    Composite,
    StageFn,
    TaggedArticle,
    per_process,
)
from transforms.topics.matcher import TopicMatcher
from transforms.topics.taxonomy import Taxonomy


@dataclasses.dataclass(eq=False)
class _TagFn(StageFn):
    stage = TAG_TOPICS
    taxonomy: Taxonomy
    _matcher: TopicMatcher | None = dataclasses.field(default=None, init=False, repr=False)

    def setup(self) -> None:
        taxonomy = self.taxonomy
        self._matcher = per_process(("topics", taxonomy), lambda: TopicMatcher(taxonomy))

    def teardown(self) -> None:
        self._matcher = None

    def handle(self, article: Article) -> Iterator[TaggedArticle]:
        assert self._matcher is not None
        yield TaggedArticle(article, self._matcher.tag(article.title or "", article.text),
                            self.taxonomy.version)


@dataclasses.dataclass(eq=False)
class TagTopics(Composite):
    """Article -> TaggedArticle (main) and DeadLetter (`dead_letters`)."""

    taxonomy: Taxonomy

    def expand(self, articles: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        return articles | "Tag" >> beam.ParDo(_TagFn(self.taxonomy)).with_outputs(
            DEAD_LETTERS, main="tagged"
        )
