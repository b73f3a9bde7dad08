"""Topics: the taxonomy and its file, its compiled matcher, TagTopics, and evaluation
against labels."""

from typing import TYPE_CHECKING

from transforms import lazy_exports

if TYPE_CHECKING:
    from transforms.topics.evaluation import (
        Evaluation as Evaluation,
        LabelledText as LabelledText,
        describe_tag as describe_tag,
        evaluate as evaluate,
        format_evaluation as format_evaluation,
        labelled_text as labelled_text,
    )
    from transforms.topics.layout import (
        Layout as Layout,
        text_layout as text_layout,
    )
    from transforms.topics.matcher import (
        TopicMatcher as TopicMatcher,
    )
    from transforms.topics.relevance import (
        DEFAULT_RELEVANCE as DEFAULT_RELEVANCE,
        INFINITE as INFINITE,
        Relevance as Relevance,
        Signals as Signals,
        explain_signals as explain_signals,
        judge as judge,
    )
    from transforms.topics.tag import (
        TagTopics as TagTopics,
    )
    from transforms.topics.taxonomy import (
        Taxonomy as Taxonomy,
        Term as Term,
        Topic as Topic,
    )
    from transforms.topics.taxonomy_file import (
        load_taxonomy as load_taxonomy,
        parse_taxonomy as parse_taxonomy,
    )
    from transforms.topics.tuning import (
        Tuned as Tuned,
        tune as tune,
        with_relevance as with_relevance,
    )

__getattr__, __all__ = lazy_exports(__name__, __file__)
