"""The declarative sync file (TOML): parsed and checked into a :class:`SyncFile`, which builds the
library's own :class:`~contentstack_personalize.sync.Sync`, source and alerts from it.

Nothing here syncs: this module only turns the file into arguments of the public API. Paths in
the file are relative to the file. Strings in ``state``, ``[source]`` and ``[alerts]`` may hold
``${NAME}`` references to environment variables; secrets (a sink's URL or key, a password in a
database URL) must be given that way, so that the file itself can be committed.
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import os
import re
import sqlite3
import sys
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from ..alerts import (
    Alerts,
    DurationAbove,
    Email,
    InvalidAbove,
    PagerDuty,
    RejectedAbove,
    RowsDropped,
    Rule,
    RunFailed,
    SlackWebhook,
    TwilioSMS,
    Webhook,
)
from ..client import PersonalizeClient
from ..debugger import Debugger
from ..errors import ConfigurationError
from ..sync import Field, Sync, from_csv, from_sql

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["SyncFile", "SyncFileError", "load_sync_file"]


class SyncFileError(ConfigurationError):
    """The sync file cannot be read or says something that cannot work; nothing was sent."""


_TOP_KEYS = {
    "name",
    "match_on",
    "state",
    "source",
    "mapping",
    "values",
    "alerts",
    "debugger",
    # passed to Sync(...) as they are
    "create_missing_attributes",
    "check_attributes",
    "on_duplicate",
    "type_check",
    "concurrency",
    "requests_per_second",
    "max_rejection_ratio",
    "min_sample",
    "commit_every",
    "commit_interval",
    "max_issue_details",
    "lock_timeout",
}
_SYNC_OPTIONS: dict[str, type | tuple[type, ...]] = {
    "create_missing_attributes": bool,
    "check_attributes": bool,
    "on_duplicate": str,
    "type_check": str,
    "concurrency": int,
    "requests_per_second": (int, float),
    "max_rejection_ratio": (int, float),
    "min_sample": int,
    "commit_every": int,
    "commit_interval": (int, float),
    "max_issue_details": int,
    "lock_timeout": (int, float),
}
_FIELD_KEYS = {"key", "type", "coerce", "null", "default", "transform"}

_RULES: dict[str, type[Rule]] = {
    "run_failed": RunFailed,
    "rejected_above": RejectedAbove,
    "invalid_above": InvalidAbove,
    "rows_dropped": RowsDropped,
    "duration_above": DurationAbove,
}
_SINKS: dict[str, Callable[..., Any]] = {
    "slack": SlackWebhook,
    "pagerduty": PagerDuty,
    "webhook": Webhook,
    "email": Email,
    "sms": TwilioSMS,
}
# Arguments of each sink that are secrets: only ${NAME} references are accepted.
_SINK_SECRETS = {
    "slack": {"url"},
    "pagerduty": {"routing_key"},
    "webhook": {"url", "secret"},
    "email": {"password"},
    "sms": {"auth_token"},
}


def _email_domain(value: Any) -> Any:
    text = str(value)
    if "@" not in text:
        raise ValueError(f"{text!r} is not an e-mail address")
    return text.rsplit("@", 1)[1]


BUILTIN_TRANSFORMS: dict[str, Callable[[Any], Any]] = {
    "strip": lambda value: str(value).strip(),
    "lower": lambda value: str(value).lower(),
    "upper": lambda value: str(value).upper(),
    "email_domain": _email_domain,
}

_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@attrs.frozen(kw_only=True)
class SourceSpec:
    """Where the rows come from: ``kind`` is ``"csv"``, ``"parquet"`` or ``"sql"``."""

    kind: str
    path: Path | None = None
    options: dict[str, Any] = attrs.field(factory=dict)
    sql: str | None = None
    database: str | None = attrs.field(default=None, repr=False)  # may hold a password
    params: Any = None

    def describe(self) -> str:
        """A one-line description with no secret in it."""
        if self.kind == "sql":
            return f"SQL query on {_redact_url(self.database or '')}"
        return f"{self.kind} file {self.path}"


@attrs.frozen(kw_only=True)
class SyncFile:
    """A parsed sync file; :meth:`build` makes the :class:`Sync`, :meth:`open_source` the rows."""

    path: Path
    name: str | None
    match_on: str
    mapping: list[Field]
    state: str | None = attrs.field(repr=False)  # may be a URL with a password
    source: SourceSpec
    options: dict[str, Any]
    alerts: Alerts | None
    debugger: bool | str | None

    def build(self, client: PersonalizeClient) -> Sync:
        """The library's ``Sync`` for this file (opens the state store)."""
        debugger: bool | Debugger | None
        if isinstance(self.debugger, str):
            debugger = Debugger(export=str(self._resolve(self.debugger)))
        else:
            debugger = self.debugger
        return Sync(
            client,
            match_on=self.match_on,
            mapping=self.mapping,
            state=self.state,
            name=self.name,
            alerts=self.alerts,
            debugger=debugger,
            **self.options,
        )

    def state_description(self) -> str:
        """Where the state lives, with no secret in it."""
        if self.state is None:
            return "in memory (every run sends everything)"
        return _redact_url(self.state)

    def _resolve(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.path.parent / path

    @contextlib.contextmanager
    def open_source(self) -> Iterator[Any]:
        """Yield the source for ``Sync.run`` / ``Sync.plan``, closing what it opened."""
        spec = self.source
        if spec.kind == "csv":
            assert spec.path is not None
            if not spec.path.exists():
                raise SyncFileError(f"the CSV file {spec.path} does not exist")
            yield from_csv(spec.path, **spec.options)
        elif spec.kind == "parquet":
            assert spec.path is not None
            yield _open_parquet(spec.path, spec.options)[0]
        else:
            assert spec.sql is not None and spec.database is not None
            connection = _connect(spec.database, self.path.parent)
            try:
                yield from_sql(connection, spec.sql, spec.params)
            finally:
                connection.close()

    def source_columns(self) -> tuple[str, ...]:
        """The source's column names, without reading its rows (a query is executed once)."""
        spec = self.source
        if spec.kind == "csv":
            assert spec.path is not None
            return _csv_columns(spec.path, spec.options)
        if spec.kind == "parquet":
            assert spec.path is not None
            return _open_parquet(spec.path, spec.options)[1]
        assert spec.database is not None
        connection = _connect(spec.database, self.path.parent)
        try:
            return _sql_columns(connection, spec)
        finally:
            connection.close()

    def columns(self) -> list[str]:
        """The source columns the mapping reads (the match column first)."""
        needed = [self.match_on]
        for field in self.mapping:
            if field.column is not None and field.column not in needed:
                needed.append(field.column)
        return needed


def load_sync_file(
    path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> SyncFile:
    """Read and check a sync file; raises :class:`SyncFileError` naming the file and the key."""
    file = Path(path)
    env = os.environ if environ is None else environ
    try:
        with open(file, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise SyncFileError(f"sync file not found: {file}") from None
    except OSError as exc:
        raise SyncFileError(f"cannot read the sync file {file}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SyncFileError(f"{file}: not valid TOML: {exc}") from None
    return _Parser(file.resolve(), env).parse(data)


class _Parser:
    def __init__(self, path: Path, env: Mapping[str, str]) -> None:
        self.path = path
        self.env = env

    def fail(self, where: str, message: str) -> SyncFileError:
        return SyncFileError(f"{self.path.name}: {where}: {message}")

    def expand(self, value: Any, where: str) -> Any:
        if isinstance(value, str):

            def sub(match: re.Match[str]) -> str:
                name = match.group(1)
                if name not in self.env:
                    raise self.fail(where, f"environment variable {name} is not set")
                return self.env[name]

            return _REF.sub(sub, value)
        if isinstance(value, list):
            return [self.expand(item, where) for item in value]
        if isinstance(value, dict):
            return {k: self.expand(v, f"{where}.{k}") for k, v in value.items()}
        return value

    def resolve(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.path.parent / path

    def table(self, data: Mapping[str, Any], key: str, required: bool = False) -> dict[str, Any]:
        value = data.get(key)
        if value is None:
            if required:
                raise self.fail(key, f"missing: add a [{key}] table")
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a table ([{key}]), not {type(value).__name__}")
        return value

    def parse(self, data: dict[str, Any]) -> SyncFile:
        for secret in ("project_uid", "authtoken", "management_token", "region", "oauth"):
            if secret in data:
                raise self.fail(
                    secret,
                    "credentials come from the environment only (CONTENTSTACK_PERSONALIZE_"
                    "PROJECT_UID, CONTENTSTACK_AUTHTOKEN, CONTENTSTACK_REGION...)",
                )
        unknown = sorted(set(data) - _TOP_KEYS)
        if unknown:
            raise self.fail(
                unknown[0], f"unknown setting; known ones are {', '.join(sorted(_TOP_KEYS))}"
            )
        match_on = data.get("match_on")
        if not isinstance(match_on, str) or not match_on:
            raise self.fail("match_on", "required: the column holding the Personalize User UID")
        name = data.get("name")
        if name is not None and (not isinstance(name, str) or not name):
            raise self.fail("name", "must be a non-empty string")
        options: dict[str, Any] = {}
        for key, kind in _SYNC_OPTIONS.items():
            if key in data:
                value = data[key]
                if isinstance(value, bool) and kind is not bool:
                    raise self.fail(key, f"must be a number, not {value!r}")
                if not isinstance(value, kind):
                    raise self.fail(key, f"has the wrong type ({type(value).__name__})")
                options[key] = value
        debugger = data.get("debugger")
        if debugger is not None and not isinstance(debugger, (bool, str)):
            raise self.fail("debugger", "must be true, false or a .jsonl path to export to")
        return SyncFile(
            path=self.path,
            name=name,
            match_on=match_on,
            mapping=self.mapping(data),
            state=self.state(data.get("state")),
            source=self.source(self.table(data, "source", required=True)),
            options=options,
            alerts=self.alerts(self.table(data, "alerts")),
            debugger=debugger,
        )

    def state(self, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise self.fail("state", "must be a path or a URL")
        _refuse_literal_password(self, "state", value)
        expanded = str(self.expand(value, "state"))
        if "://" in expanded or expanded == ":memory:":
            return expanded  # a URL: passed to Sync(state=...) as it is
        return str(self.resolve(expanded))

    def source(self, table: dict[str, Any]) -> SourceSpec:
        kinds = [k for k in ("csv", "parquet", "sql") if k in table]
        if len(kinds) != 1:
            raise self.fail(
                "source", 'needs exactly one of csv = "...", parquet = "..." or sql = "..."'
            )
        kind = kinds[0]
        if kind == "sql":
            database = table.get("database")
            if not isinstance(database, str) or not database:
                raise self.fail(
                    "source.database",
                    'a SQL source needs database = "sqlite:///warehouse.db" (or "${DATABASE_URL}")',
                )
            _refuse_literal_password(self, "source.database", database)
            unknown = sorted(set(table) - {"sql", "database", "params"})
            if unknown:
                raise self.fail(f"source.{unknown[0]}", "unknown setting for a SQL source")
            params = table.get("params")
            if params is not None and not isinstance(params, (list, dict)):
                raise self.fail("source.params", "must be a list or a table")
            sql = table["sql"]
            if not isinstance(sql, str) or not sql.strip():
                raise self.fail("source.sql", "must be a query")
            return SourceSpec(
                kind="sql",
                sql=sql,
                database=str(self.expand(database, "source.database")),
                params=self.expand(params, "source.params"),
            )
        raw = self.expand(table, "source")
        path = raw.pop(kind)
        if not isinstance(path, str) or not path:
            raise self.fail(f"source.{kind}", "must be a file path")
        allowed = {"csv": {"delimiter", "encoding", "empty_as_null"}, "parquet": {"batch_size"}}
        unknown = sorted(set(raw) - allowed[kind])
        if unknown:
            raise self.fail(
                f"source.{unknown[0]}",
                f"unknown setting for a {kind} source (known: {', '.join(sorted(allowed[kind]))})",
            )
        return SourceSpec(kind=kind, path=self.resolve(path), options=raw)

    def mapping(self, data: Mapping[str, Any]) -> list[Field]:
        table = self.table(data, "mapping", required=True)
        fields: list[Field] = []
        for column, spec in table.items():
            where = f"mapping.{column}"
            if isinstance(spec, str):
                fields.append(self.field(where, spec, column=column))
                continue
            if not isinstance(spec, dict):
                raise self.fail(where, 'must be an attribute key ("plan") or a table')
            unknown = sorted(set(spec) - _FIELD_KEYS)
            if unknown:
                raise self.fail(
                    f"{where}.{unknown[0]}",
                    f"unknown field option (known: {', '.join(sorted(_FIELD_KEYS))})",
                )
            kwargs: dict[str, Any] = {
                k: v for k, v in spec.items() if k not in ("key", "transform")
            }
            if "transform" in spec:
                kwargs["transform"] = self.transform(f"{where}.transform", spec["transform"])
            fields.append(self.field(where, spec.get("key", column), column=column, **kwargs))
        for key, value in self.table(data, "values").items():
            fields.append(self.field(f"values.{key}", key, value=value))
        if not fields:
            raise self.fail("mapping", 'maps no column: add column = "attribute_key" lines')
        return fields

    def field(self, where: str, key: Any, **kwargs: Any) -> Field:
        if not isinstance(key, str):
            raise self.fail(where, "the attribute key must be a string")
        try:
            return Field(key, **kwargs)
        except (ConfigurationError, TypeError, ValueError) as exc:
            raise self.fail(where, str(exc)) from None

    def transform(self, where: str, value: Any) -> Callable[[Any], Any]:
        if not isinstance(value, str) or not value:
            raise self.fail(where, 'must name a transform ("lower") or a function ("pkg.mod:fn")')
        if value in BUILTIN_TRANSFORMS:
            return BUILTIN_TRANSFORMS[value]
        module_name, sep, attr = value.partition(":")
        if not sep or not module_name or not attr:
            raise self.fail(
                where,
                f"unknown transform {value!r}: use one of {', '.join(BUILTIN_TRANSFORMS)} or "
                '"module:function" (a module beside the sync file or on the path)',
            )
        folder = str(self.path.parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        try:
            fn = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise self.fail(where, f"cannot import {value!r}: {exc}") from None
        if not callable(fn):
            raise self.fail(where, f"{value!r} is not callable")
        return fn  # type: ignore[no-any-return]

    def alerts(self, table: dict[str, Any]) -> Alerts | None:
        if not table:
            return None
        unknown = sorted(set(table) - {"rules", "sinks"})
        if unknown:
            raise self.fail(f"alerts.{unknown[0]}", "unknown setting (known: rules, sinks)")
        rules: list[Rule] = []
        for i, spec in enumerate(self.array(table, "rules")):
            where = f"alerts.rules[{i}]"
            kind = spec.pop("type", None)
            if kind not in _RULES:
                raise self.fail(f"{where}.type", f"must be one of {', '.join(_RULES)}")
            try:
                rules.append(_RULES[kind](**spec))
            except (ConfigurationError, TypeError, ValueError) as exc:
                raise self.fail(where, str(exc)) from None
        sinks: list[Any] = []
        for i, spec in enumerate(self.array(table, "sinks")):
            where = f"alerts.sinks[{i}]"
            kind = spec.pop("type", None)
            if kind not in _SINKS:
                raise self.fail(f"{where}.type", f"must be one of {', '.join(_SINKS)}")
            for secret in sorted(_SINK_SECRETS[kind] & set(spec)):
                value = spec[secret]
                if not (isinstance(value, str) and _REF.fullmatch(value.strip())):
                    raise self.fail(
                        f"{where}.{secret}",
                        'is a secret: give it as "${ENV_VAR}" and set that variable',
                    )
            try:
                sinks.append(_SINKS[kind](**self.expand(spec, where)))
            except (ConfigurationError, TypeError, ValueError) as exc:
                raise self.fail(where, str(exc)) from None
        if not rules:
            raise self.fail("alerts.rules", "no rules: add [[alerts.rules]] tables")
        try:
            return Alerts(rules=rules, sinks=sinks)
        except ConfigurationError as exc:
            raise self.fail("alerts", str(exc)) from None

    def array(self, table: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(f"alerts.{key}", f"must be [[alerts.{key}]] tables")
        return [dict(v) for v in value]


def _refuse_literal_password(parser: _Parser, where: str, value: str) -> None:
    if "${" in value:
        return
    try:
        password = urllib.parse.urlsplit(value).password
    except ValueError:
        return
    if password:
        raise parser.fail(
            where,
            'holds a password: give the URL as "${ENV_VAR}" and set that variable instead',
        )


def _redact_url(value: str) -> str:
    """A URL with its password (and query) removed; other strings as they are."""
    if "://" not in value:
        return value
    try:
        parts = urllib.parse.urlsplit(value)
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        if parts.username:
            netloc = (
                f"{parts.username}:***@{netloc}" if parts.password else f"{parts.username}@{netloc}"
            )
    except ValueError:
        return value.split("://", 1)[0] + "://***"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _csv_columns(path: Path, options: Mapping[str, Any]) -> tuple[str, ...]:
    try:
        with open(path, newline="", encoding=options.get("encoding", "utf-8-sig")) as handle:
            header = next(csv.reader(handle, delimiter=options.get("delimiter", ",")), [])
    except FileNotFoundError:
        raise SyncFileError(f"the CSV file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SyncFileError(f"cannot read the header of {path}: {exc}") from None
    return tuple(header)


def _open_parquet(path: Path, options: Mapping[str, Any]) -> tuple[Any, tuple[str, ...]]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise SyncFileError(
            "a Parquet source needs pyarrow: pip install 'contentstack-personalize[pyarrow]'"
        ) from None
    if not path.exists():
        raise SyncFileError(f"the Parquet file {path} does not exist")
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise SyncFileError(f"cannot read the Parquet file {path}: {exc}") from None
    schema = parquet.schema_arrow
    batches = parquet.iter_batches(batch_size=int(options.get("batch_size", 5000)))
    return pa.RecordBatchReader.from_batches(schema, batches), tuple(schema.names)


def _connect(url: str, base: Path) -> Any:
    """A DB-API connection for ``url``: sqlite through the standard library; PostgreSQL through
    psycopg or psycopg2; anything else through SQLAlchemy, when installed."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        rest = url.split("://", 1)[1]
        if not rest.startswith("/"):
            raise SyncFileError(
                'a sqlite URL looks like "sqlite:///relative.db" or "sqlite:////abs.db"'
            )
        target = rest[1:]
        path = Path(target) if Path(target).is_absolute() else base / target
        if not path.exists():
            raise SyncFileError(f"the sqlite database {path} does not exist")
        try:
            return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        except sqlite3.Error as exc:
            raise SyncFileError(f"cannot open the sqlite database {path}: {exc}") from None
    if scheme in ("postgres", "postgresql"):
        for module_name in ("psycopg", "psycopg2"):
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue
            return module.connect(url)
        raise SyncFileError("a PostgreSQL source needs psycopg: pip install 'psycopg[binary]'")
    if not scheme:
        raise SyncFileError(
            'source.database must be a URL such as "sqlite:///warehouse.db" or "${DATABASE_URL}"'
        )
    try:
        sqlalchemy = importlib.import_module("sqlalchemy")
    except ImportError:
        raise SyncFileError(
            f"a {scheme} database needs SQLAlchemy and its driver: pip install sqlalchemy"
        ) from None
    return sqlalchemy.create_engine(url).raw_connection()


def _sql_columns(connection: Any, spec: SourceSpec) -> tuple[str, ...]:
    """The query's column names, read from a cursor of its own (rows are not fetched)."""
    cursor = connection.cursor()
    try:
        if spec.params is None:
            cursor.execute(spec.sql)
        else:
            cursor.execute(spec.sql, spec.params)
        return tuple(d[0] for d in cursor.description or ())
    finally:
        cursor.close()
