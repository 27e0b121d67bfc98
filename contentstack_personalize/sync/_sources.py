"""Sources: anything a data team has -> a stream of row mappings, read in chunks.

Supported without extra packages: any iterable of mappings, a CSV file path, a DB-API 2.0 cursor,
and a connection plus SQL (:func:`from_sql`). With the optional libraries installed: pandas and
polars DataFrames, pyarrow tables and record-batch readers. Those libraries are recognised by
their type's module and never imported here, so nothing requires them.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from ..errors import ConfigurationError

__all__ = ["InvalidRow", "Rows", "SQLQuery", "from_csv", "from_sql", "open_source"]

DEFAULT_CHUNK = 5000


@attrs.frozen
class Rows:
    """A source opened for reading: its column names (when known up front) and its rows."""

    columns: tuple[str, ...] | None
    rows: Iterator[Any]  # mappings, unless the source breaks its promise
    description: str


@attrs.frozen
class SQLQuery:
    """A query to run on a DB-API 2.0 connection; see :func:`from_sql`."""

    connection: Any
    sql: str
    params: Sequence[Any] | Mapping[str, Any] | None = None
    chunk_size: int = DEFAULT_CHUNK


def from_sql(
    connection: Any,
    sql: str,
    params: Sequence[Any] | Mapping[str, Any] | None = None,
    *,
    chunk_size: int = DEFAULT_CHUNK,
) -> SQLQuery:
    """A source that runs ``sql`` on a DB-API 2.0 ``connection`` and streams the result.

    Example::

        import sqlite3
        conn = sqlite3.connect("warehouse.db")
        sync.run(from_sql(conn, "SELECT user_id, plan FROM users WHERE active = ?", [1]))
    """
    return SQLQuery(connection, sql, params, chunk_size)


@attrs.frozen
class CSVFile:
    """A CSV file to stream; see :func:`from_csv`."""

    path: str
    delimiter: str = ","
    encoding: str = "utf-8-sig"
    empty_as_null: bool = True


def from_csv(
    path: str | os.PathLike[str],
    *,
    delimiter: str = ",",
    encoding: str = "utf-8-sig",
    empty_as_null: bool = True,
) -> CSVFile:
    """A CSV file source (a header row, then data). Values arrive as text; declare field types
    to turn them into numbers, booleans or dates. An empty cell is a missing value (null), as
    in every spreadsheet export; pass ``empty_as_null=False`` to send empty strings instead.

    Example: ``sync.run(from_csv("users.csv", delimiter=";"))``. A plain path works too.
    """
    return CSVFile(os.fspath(path), delimiter, encoding, empty_as_null)


def _cursor_rows(cursor: Any, chunk_size: int) -> Iterator[dict[str, Any]]:
    if cursor.description is None:
        raise ConfigurationError("the cursor has no result set: execute a SELECT first")
    columns = [d[0] for d in cursor.description]
    while True:
        batch = cursor.fetchmany(chunk_size)
        if not batch:
            return
        for record in batch:
            if isinstance(record, Mapping):
                yield dict(record)
            else:
                yield dict(zip(columns, record, strict=False))


@attrs.frozen
class InvalidRow:
    """A row a source could read but not make sense of; the engine reports it as invalid."""

    reason: str


def _csv_rows(source: CSVFile) -> Rows:
    try:
        handle = open(source.path, newline="", encoding=source.encoding)  # noqa: SIM115
    except OSError as exc:
        raise ConfigurationError(f"cannot open CSV file {source.path!r}: {exc}") from exc
    reader = csv.DictReader(handle, delimiter=source.delimiter)
    try:
        columns = tuple(reader.fieldnames or ())
    except (csv.Error, UnicodeDecodeError) as exc:
        handle.close()
        raise ConfigurationError(f"cannot read the CSV header of {source.path!r}: {exc}") from exc

    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        handle.close()
        raise ConfigurationError(
            f"the CSV header of {source.path!r} names {duplicated} more than once; rename the "
            "columns so that each value has one name"
        )
    empty_as_null = source.empty_as_null

    def rows() -> Iterator[Any]:
        with handle:
            try:
                for row in reader:
                    if None in row:  # more cells than the header: usually an unquoted delimiter
                        yield InvalidRow(
                            f"line {reader.line_num} has more fields than the header "
                            f"({len(columns)}); quote values that contain {source.delimiter!r}"
                        )
                    elif empty_as_null:
                        yield {k: (None if v == "" else v) for k, v in row.items()}
                    else:
                        yield row
            except (csv.Error, UnicodeDecodeError) as exc:
                raise ConfigurationError(
                    f"cannot read {source.path!r} after line {reader.line_num}: {exc}; check the "
                    f"file's encoding (from_csv(path, encoding=...), now {source.encoding!r}) "
                    "and quoting"
                ) from exc

    return Rows(columns, rows(), f"CSV file {source.path}")


def _pandas_rows(frame: Any, chunk_size: int) -> Rows:
    if any(not isinstance(c, str) for c in frame.columns):
        frame = frame.rename(columns=str)  # rows are looked up by name, and names are text
    columns = tuple(frame.columns)
    # to_dict() widens float32 to the binary value (0.1 -> 0.10000000149011612); read such
    # columns through their shortest text, which is the value the DataFrame shows.
    narrow = [c for c, t in frame.dtypes.items() if str(t) in ("float32", "float16")]

    def rows() -> Iterator[Mapping[str, Any]]:
        n = len(frame)
        for start in range(0, n, chunk_size):
            chunk = frame.iloc[start : start + chunk_size]
            if narrow:
                chunk = chunk.assign(**{c: chunk[c].astype(str).astype("float64") for c in narrow})
            # to_dict("records") keeps numpy scalars and NaN/NaT, which the mapper normalises.
            yield from chunk.to_dict("records")

    return Rows(columns, rows(), f"pandas DataFrame ({len(frame)} rows)")


def _polars_rows(frame: Any, chunk_size: int) -> Rows:
    columns = tuple(frame.columns)
    narrow = [c for c, t in frame.schema.items() if str(t) in ("Float32", "Float16")]
    if narrow:  # as for pandas: the value shown, not the widened binary value
        import polars as pl

        frame = frame.with_columns([pl.col(c).cast(pl.Utf8).cast(pl.Float64) for c in narrow])

    def rows() -> Iterator[Mapping[str, Any]]:
        for start in range(0, frame.height, chunk_size):
            yield from frame.slice(start, chunk_size).iter_rows(named=True)

    return Rows(columns, rows(), f"polars DataFrame ({frame.height} rows)")


def _arrow_batches_rows(columns: tuple[str, ...], batches: Iterable[Any], what: str) -> Rows:
    def rows() -> Iterator[Mapping[str, Any]]:
        for batch in batches:
            yield from batch.to_pylist()

    return Rows(columns, rows(), what)


def open_source(source: Any, *, chunk_size: int = DEFAULT_CHUNK) -> Rows:
    """Recognise ``source`` and open it as a stream of rows."""
    if isinstance(source, Rows):
        return source
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not isinstance(path, str):
            path = path.decode()
        return _csv_rows(CSVFile(path))
    if isinstance(source, CSVFile):
        return _csv_rows(source)
    if isinstance(source, SQLQuery):
        cursor = source.connection.cursor()
        if source.params is None:
            cursor.execute(source.sql)
        else:
            cursor.execute(source.sql, source.params)
        columns = tuple(d[0] for d in cursor.description or ())
        return Rows(columns, _cursor_rows(cursor, source.chunk_size), "SQL query")
    module = type(source).__module__.split(".")[0]
    name = type(source).__name__
    if module == "pandas" and name == "DataFrame":
        return _pandas_rows(source, chunk_size)
    if module == "polars" and name == "DataFrame":
        return _polars_rows(source, chunk_size)
    if module == "polars" and name == "LazyFrame":
        return _polars_rows(source.collect(), chunk_size)
    if module == "pyarrow":
        if name == "Table":
            return _arrow_batches_rows(
                tuple(source.column_names),
                source.to_batches(max_chunksize=chunk_size),
                f"pyarrow Table ({source.num_rows} rows)",
            )
        if name == "RecordBatch":
            return _arrow_batches_rows(tuple(source.schema.names), [source], "pyarrow RecordBatch")
        if name == "RecordBatchReader" or hasattr(source, "read_next_batch"):
            return _arrow_batches_rows(
                tuple(source.schema.names), source, "pyarrow RecordBatchReader"
            )
    if hasattr(source, "fetchmany") and hasattr(source, "description"):
        if source.description is None:
            raise ConfigurationError("the cursor has no result set: execute a SELECT first")
        columns = tuple(d[0] for d in source.description)
        return Rows(columns, _cursor_rows(source, chunk_size), "DB-API cursor")
    if isinstance(source, Mapping):
        raise ConfigurationError(
            "the source is a single mapping; pass a list (or any iterable) of row mappings"
        )
    if isinstance(source, Iterable):
        # Rows of a plain iterable may each have other keys: no column list up front (the
        # engine checks that every needed column shows up in some row).
        return Rows(None, iter(source), "iterable of rows")
    raise ConfigurationError(
        f"cannot read rows from a {type(source).__name__}: pass an iterable of mappings, a CSV "
        "path, a DB-API cursor, from_sql(connection, sql), or a pandas/polars/pyarrow table"
    )
