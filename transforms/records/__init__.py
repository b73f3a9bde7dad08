"""ToRecords: tagged articles become output records, built in one place."""

from transforms.records.build import ToRecords, build_record

__all__ = ["ToRecords", "build_record"]
