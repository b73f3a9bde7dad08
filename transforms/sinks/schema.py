"""Column schemas derived from the one record definition (`transforms.core.Record`).

Parquet (Arrow), PostgreSQL and BigQuery columns all come from Record's type hints, so adding a
field to Record adds it everywhere; `plain_values` (transforms.core) gives the matching values.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import datetime
from typing import Any, Union

import pyarrow as pa

from transforms.core import Record


def _unwrap(hint: Any) -> tuple[Any, bool]:
    """(inner type, nullable) of `X | None`."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0], len(args) < len(typing.get_args(hint))
    return hint, False


def _arrow_type(hint: Any) -> pa.DataType:
    origin = typing.get_origin(hint)
    if origin is tuple:
        return pa.list_(_arrow_type(typing.get_args(hint)[0]))
    if isinstance(hint, type) and issubclass(hint, tuple) and hasattr(hint, "_fields"):
        hints = typing.get_type_hints(hint)
        return pa.struct([pa.field(name, _arrow_type(hints[name])) for name in hint._fields])
    return {
        str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_(),
        datetime: pa.timestamp("us", tz="UTC"),
    }[hint]


def arrow_schema(element: type = Record) -> pa.Schema:
    """The Arrow schema of records (or dead letters): lists and structs typed, times as UTC
    timestamps."""
    hints = typing.get_type_hints(element)
    fields = []
    for field in dataclasses.fields(element):
        inner, nullable = _unwrap(hints[field.name])
        fields.append(pa.field(field.name, _arrow_type(inner), nullable=nullable))
    return pa.schema(fields)


_SQL_TYPES = {str: "text", int: "bigint", float: "double precision", bool: "boolean",
              datetime: "timestamptz"}


def postgres_columns(element: type = Record) -> list[tuple[str, str, bool]]:
    """(column, SQL type, nullable) for a table of records (topics as jsonb, plus a text[] of
    topic names) or of dead letters."""
    hints = typing.get_type_hints(element)
    columns = []
    for field in dataclasses.fields(element):
        inner, nullable = _unwrap(hints[field.name])
        if field.name == "topics":
            sql = "jsonb"
        elif typing.get_origin(inner) is tuple:
            sql = _SQL_TYPES[typing.get_args(inner)[0]] + "[]"
        else:
            sql = _SQL_TYPES[inner]
        columns.append((field.name, sql, nullable))
    if element is Record:
        columns.append(("topic_names", "text[]", False))
    return columns


_BIGQUERY_TYPES = {str: "STRING", int: "INTEGER", float: "FLOAT", bool: "BOOLEAN",
                   datetime: "TIMESTAMP"}


def _bigquery_field(name: str, hint: Any, nullable: bool) -> dict[str, Any]:
    origin = typing.get_origin(hint)
    if origin is tuple:
        inner = _bigquery_field(name, typing.get_args(hint)[0], False)
        return {**inner, "mode": "REPEATED"}
    if isinstance(hint, type) and issubclass(hint, tuple) and hasattr(hint, "_fields"):
        hints = typing.get_type_hints(hint)
        return {"name": name, "type": "RECORD", "mode": "NULLABLE" if nullable else "REQUIRED",
                "fields": [_bigquery_field(f, hints[f], False) for f in hint._fields]}
    return {"name": name, "type": _BIGQUERY_TYPES[hint],
            "mode": "NULLABLE" if nullable else "REQUIRED"}


def bigquery_schema(element: type = Record) -> dict[str, Any]:
    """A BigQuery table schema ({"fields": [...]}) for records (or another element a sink
    writes), as WriteToBigQuery takes it."""
    hints = typing.get_type_hints(element)
    fields = []
    for field in dataclasses.fields(element):
        inner, nullable = _unwrap(hints[field.name])
        fields.append(_bigquery_field(field.name, inner, nullable))
    return {"fields": fields}
