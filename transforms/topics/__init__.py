"""Topics: the taxonomy, its compiled matcher, TagTopics, and evaluation against labels."""

from transforms.topics.evaluation import (
    Evaluation,
    LabelledText,
    describe_tag,
    evaluate,
    format_evaluation,
    labelled_text,
)
from transforms.topics.matcher import TopicMatcher
from transforms.topics.tag import TagTopics
from transforms.topics.taxonomy import Taxonomy, Term, Topic

__all__ = [
    "Evaluation", "LabelledText", "TagTopics", "Taxonomy", "Term", "Topic", "TopicMatcher",
    "describe_tag", "evaluate", "format_evaluation", "labelled_text",
]
