"""Why a page gave no article: the error extraction raises, light enough for the process that
only receives it (extraction itself runs in worker processes)."""

from __future__ import annotations

from typing import Any


class ExtractionError(Exception):
    """No usable article could be extracted; `reason` is a dead-letter reason code and
    `error_type` names the underlying error (it crosses process boundaries, causes do not)."""

    def __init__(self, reason: str, message: str, error_type: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.error_type = error_type or type(self).__name__

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.reason, str(self), self.error_type))
