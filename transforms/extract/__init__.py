"""Article extraction: trafilatura over page bytes, boilerplate rules, the page's own metadata,
isolated worker processes, and ExtractArticles."""

from transforms.extract.article import ExtractionError, detect_language, extract_article
from transforms.extract.extract_articles import ExtractArticles
from transforms.extract.isolation import (
    DEFAULT_ISOLATION,
    IsolationSettings,
    ProcessPool,
    TaskTimeout,
    WorkerCrashed,
)

__all__ = [
    "DEFAULT_ISOLATION", "ExtractArticles", "ExtractionError", "IsolationSettings",
    "ProcessPool", "TaskTimeout", "WorkerCrashed", "detect_language", "extract_article",
]
