"""Article extraction: trafilatura over page bytes, boilerplate rules, the page's own metadata,
and ExtractArticles (in the worker processes of transforms.core.isolation)."""

from typing import TYPE_CHECKING

from transforms import lazy_exports

if TYPE_CHECKING:
    from transforms.extract.article import (
        detect_language as detect_language,
        extract_article as extract_article,
    )
    from transforms.extract.errors import ExtractionError as ExtractionError
    from transforms.extract.extract_articles import (
        ExtractArticles as ExtractArticles,
    )

__getattr__, __all__ = lazy_exports(__name__, __file__)
