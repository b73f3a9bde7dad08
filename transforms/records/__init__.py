"""ToRecords: tagged articles become output records, built in one place."""

from typing import TYPE_CHECKING

from transforms import lazy_exports

if TYPE_CHECKING:
    from transforms.records.build import (
        ToRecords as ToRecords,
        build_record as build_record,
    )

__getattr__, __all__ = lazy_exports(__name__, __file__)
