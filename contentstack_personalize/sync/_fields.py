"""Field mapping: columns (or static values, or computed values) -> attribute keys, with declared
types, lossless coercion, per-field transforms and a null policy; compiled once per sync into
plain functions for the per-row path."""

from __future__ import annotations

import datetime as dt
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import attrs

from .._types import NOT_GIVEN
from .._values import (
    MISSING,
    InvalidValue,
    _encode_str,
    canonical,
    describe,
    is_null,
    normalize,
)
from ..errors import ConfigurationError
from ..models import ATTRIBUTE_KEY_PATTERN, PRESET_ATTRIBUTE_NAMES

__all__ = ["Field", "FieldSpec", "NullPolicy", "compile_mapping"]

NullPolicy = Literal["skip", "send"]

#: Longest attribute key a mapping accepts (keys are also checked against
#: ``models.ATTRIBUTE_KEY_PATTERN``, the pattern the attributes resource enforces).
MAX_ATTRIBUTE_KEY_LENGTH = 100

_TYPE_NAMES = {
    str: "str",
    int: "int",
    float: "float",
    bool: "bool",
    dt.date: "date",
    dt.datetime: "datetime",
    list: "list[str]",
}
_TYPE_ALIASES = {
    "str": str,
    "string": str,
    "int": int,
    "integer": int,
    "float": float,
    "number": float,
    "bool": bool,
    "boolean": bool,
    "date": dt.date,
    "datetime": dt.datetime,
    "list": list,
    "list[str]": list,
}


def _declared_type(value: Any) -> type | None:
    if value is None:
        return None
    if isinstance(value, str):
        key = value.strip().lower()
        if key in _TYPE_ALIASES:
            return _TYPE_ALIASES[key]
    elif value in _TYPE_NAMES:
        return typing.cast(type, value)
    elif (
        isinstance(value, types.GenericAlias)
        and value.__origin__ is list
        and value.__args__ == (str,)
    ):
        return list
    raise ConfigurationError(
        f"unsupported field type {value!r}; use str, int, float, bool, datetime.date, "
        "datetime.datetime or list[str]"
    )


@attrs.frozen
class Field:
    """One attribute of a mapping, for the cases a plain ``{column: key}`` cannot say.

    - ``key``: the Personalize attribute key.
    - ``column``: the source column (in a ``{column: Field(...)}`` mapping it is the dict key).
    - ``value``: a static value sent for every row instead of a column.
    - ``compute``: a function of the whole row (a mapping) giving the value.
    - ``transform``: a function applied to the column's (non-null) value before type checks;
      nulls never reach it.
    - ``type``: ``str``, ``int``, ``float``, ``bool``, ``datetime.date``, ``datetime.datetime`` or
      ``list[str]``; a value that does not fit makes the row invalid, naming the column.
    - ``coerce``: convert when lossless (``"10"`` -> 10, ``10.0`` -> 10, ``"yes"`` -> True);
      on by default.
    - ``null``: ``"skip"`` (default) leaves the attribute untouched when the value is null;
      ``"send"`` sends JSON ``null``.
    - ``default``: the value to use instead when the value is null (or the column is absent
      from a row); it is type-checked but not transformed. Overrides ``null``.

    Example::

        Sync(client, match_on="user_id", mapping={
            "plan": "plan_tier",
            "ltv": Field("lifetime_value", type=float),
            "signup": Field("signup_date", type=datetime.date),
            "email": Field("email_domain", transform=lambda e: e.split("@")[-1]),
            "source": Field("source", value="warehouse"),
        })
    """

    key: str
    column: str | None = attrs.field(default=None, kw_only=True)
    value: Any = attrs.field(default=NOT_GIVEN, kw_only=True)
    compute: Callable[[Mapping[str, Any]], Any] | None = attrs.field(default=None, kw_only=True)
    transform: Callable[[Any], Any] | None = attrs.field(default=None, kw_only=True)
    type: Any = attrs.field(default=None, kw_only=True)
    coerce: bool = attrs.field(default=True, kw_only=True)
    null: NullPolicy = attrs.field(default="skip", kw_only=True)
    default: Any = attrs.field(default=NOT_GIVEN, kw_only=True)

    @property
    def is_static(self) -> bool:
        """Whether the field sends the same value for every row."""
        return self.value is not NOT_GIVEN


FieldSpec = str | Field


# ---------------------------------------------------------------------------------------------
# Coercion to declared types (value is not null here)
# ---------------------------------------------------------------------------------------------

_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})


_short = describe


def _to_str(value: Any, coerce: bool) -> Any:
    if isinstance(value, str):
        return value
    if coerce:
        name = type(value).__name__
        if name in ("float32", "float16"):  # the value shown, not the widened binary one
            value = float(str(value))
        elif type(value).__module__.startswith("numpy") and callable(getattr(value, "item", None)):
            value = value.item()
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):  # any size: text carries every digit (the advice for IDs)
            return int.__repr__(int(value))
        if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral():
            return str(int(value))
        if isinstance(value, (float, Decimal, dt.date, dt.time)):
            normalised = normalize(value)
            return normalised if isinstance(normalised, str) else canonical(normalised)
    raise InvalidValue(f"{_short(value)} is not text (declared str)")


def _number_from_text(text: str) -> Decimal:
    if not text.isascii():  # Decimal() would read Arabic-Indic or full-width digits
        raise InvalidValue(f"{_short(text)} is not a number (only ASCII digits are read)")
    try:
        number = Decimal(text.strip().replace("_", "x"))  # refuse "1_000": not a data format
    except InvalidOperation:
        raise InvalidValue(f"{_short(text)} is not a number") from None
    if not number.is_finite():
        raise InvalidValue(f"{_short(text)} is not a finite number")
    if number.adjusted() > 4000:
        raise InvalidValue(f"{_short(text)} is too large (more than 4,000 digits)")
    return number


def _to_int(value: Any, coerce: bool) -> Any:
    value = normalize(value)
    if isinstance(value, bool):
        raise InvalidValue(f"{value!r} is a boolean, not an integer (declared int)")
    if isinstance(value, int):
        return value
    if coerce:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            number = _number_from_text(value)
            if number == number.to_integral_value():
                return int(number)
    raise InvalidValue(f"{_short(value)} is not an integer (declared int)")


def _to_float(value: Any, coerce: bool) -> Any:
    value = normalize(value)
    if isinstance(value, bool):
        raise InvalidValue(f"{value!r} is a boolean, not a number (declared float)")
    if isinstance(value, (int, float)):
        return float(value) if isinstance(value, int) and abs(value) < 2**53 else value
    if coerce and isinstance(value, str):
        number = _number_from_text(value)
        as_float = float(number)  # inf past the double range, never an OverflowError
        if not math.isfinite(as_float):
            raise InvalidValue(f"{_short(value)} is beyond the range of a JSON number")
        if Decimal(as_float) == number or Decimal(repr(as_float)) == number.normalize():
            return as_float
        raise InvalidValue(f"{_short(value)} cannot be represented exactly as a number")
    raise InvalidValue(f"{_short(value)} is not a number (declared float)")


def _to_bool(value: Any, coerce: bool) -> Any:
    value = normalize(value)
    if isinstance(value, bool):
        return value
    if coerce:
        if isinstance(value, str):
            text = value.strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
    raise InvalidValue(f"{_short(value)} is not a boolean (declared bool)")


def _parse_datetime(text: str) -> dt.datetime:
    candidate = text.strip()
    if candidate.endswith(("Z", "z")):
        candidate = candidate[:-1] + "+00:00"
    try:
        return dt.datetime.fromisoformat(candidate)
    except ValueError:
        raise InvalidValue(f"{_short(text)} is not an ISO 8601 date-time") from None


def _to_date(value: Any, coerce: bool) -> Any:
    if isinstance(value, dt.datetime):
        if coerce and value.time() == dt.time(0) and value.tzinfo is None:
            return value.date().isoformat()
        raise InvalidValue(f"{_short(value)} has a time of day (declared date)")
    if isinstance(value, dt.date):
        return value.isoformat()
    if coerce and isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            raise InvalidValue(f"{_short(value)} is not an ISO 8601 date (YYYY-MM-DD)") from None
    raise InvalidValue(f"{_short(value)} is not a date (declared date)")


def _to_datetime(value: Any, coerce: bool) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if coerce:
        if isinstance(value, dt.date):
            return dt.datetime(value.year, value.month, value.day).isoformat()
        if isinstance(value, str):
            return _parse_datetime(value).isoformat()
        normalised = normalize(value)  # numpy datetime64 and pandas Timestamp become text
        if isinstance(normalised, str) and normalised is not value:
            return _parse_datetime(normalised).isoformat()
    raise InvalidValue(f"{_short(value)} is not a date-time (declared datetime)")


def _to_list(value: Any, coerce: bool) -> Any:
    value = normalize(value)
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, str):
                out.append(item)
            elif coerce and isinstance(item, (int, float)) and not isinstance(item, bool):
                out.append(canonical(item))
            else:
                raise InvalidValue(f"list item {_short(item)} is not text (declared list[str])")
        return out
    if coerce and isinstance(value, str):
        return [value]
    raise InvalidValue(f"{_short(value)} is not a list of text (declared list[str])")


_COERCERS: dict[type, Callable[[Any, bool], Any]] = {
    str: _to_str,
    int: _to_int,
    float: _to_float,
    bool: _to_bool,
    dt.date: _to_date,
    dt.datetime: _to_datetime,
    list: _to_list,
}


# ---------------------------------------------------------------------------------------------
# Compiled mapping
# ---------------------------------------------------------------------------------------------

#: What a compiled field returns when the attribute is left out of the row's payload.
SKIP: Any = object()


@attrs.frozen
class CompiledField:
    """A field ready for the per-row path: ``convert(row)`` gives canonical JSON or ``SKIP``."""

    key: str
    column: str | None
    field: Field
    declared: type | None
    convert: Callable[[Mapping[str, Any]], Any]


def _error_text(exc: BaseException) -> str:
    """``Name: message`` of an exception from user code, even when its ``__str__`` raises."""
    try:
        detail = str(exc)
    except Exception:
        detail = "<its message could not be read>"
    return f"{type(exc).__name__}: {detail[:200]}" if detail else type(exc).__name__


def _unexpected(value: Any, exc: Exception) -> str:
    return f"{describe(value)} could not be converted ({_error_text(exc)})"


class InvalidCell(Exception):
    """A row's value for one column cannot be sent; ``column`` and the message say why."""

    def __init__(self, column: str, reason: str) -> None:
        super().__init__(f"column {column!r}: {reason}")
        self.column = column
        self.reason = reason


def _compile(field: Field) -> CompiledField:
    declared = _declared_type(field.type)
    if field.null not in ("skip", "send"):
        raise ConfigurationError(f"field {field.key!r}: null must be 'skip' or 'send'")
    label = field.column or field.key
    coerce_fn = _COERCERS.get(declared) if declared is not None else None
    coerce_flag = field.coerce
    null_result = SKIP if field.null == "skip" else "null"
    transform = field.transform

    default = field.default
    has_default = default is not NOT_GIVEN

    def finish(raw: Any) -> Any:
        if is_null(raw):
            if not has_default:
                return null_result
            raw = default
        elif transform is not None:
            try:
                raw = transform(raw)
            except Exception as exc:
                raise InvalidCell(label, f"transform failed: {_error_text(exc)}") from exc
            if is_null(raw):
                return null_result
        try:
            if coerce_fn is not None:
                raw = coerce_fn(raw, coerce_flag)
            return canonical(normalize(raw))
        except InvalidValue as exc:
            raise InvalidCell(label, str(exc)) from None
        except Exception as exc:  # malformed input never crashes a run: the row is invalid
            raise InvalidCell(label, _unexpected(raw, exc)) from None

    if field.is_static:
        try:
            static = finish(field.value)  # validated once, at configuration time
        except InvalidCell as cell:
            raise ConfigurationError(f"field {field.key!r}: value= {cell.reason}") from None

        def convert(row: Mapping[str, Any]) -> Any:
            return static

    elif field.compute is not None:
        compute = field.compute

        def convert(row: Mapping[str, Any]) -> Any:
            try:
                raw = compute(row)
            except Exception as exc:
                raise InvalidCell(label, f"compute failed: {_error_text(exc)}") from exc
            return finish(raw)

    else:
        column = field.column
        assert column is not None
        if transform is None and coerce_fn is None and not has_default:
            # The common case, kept short: no transform, no declared type.
            def convert(row: Mapping[str, Any]) -> Any:
                raw = row.get(column, MISSING)
                t = type(raw)
                if t is str:
                    if raw.isascii():
                        return _encode_str(raw)
                elif t is int:
                    if raw.bit_length() <= 53:
                        return int.__repr__(raw)
                elif t is bool:
                    return "true" if raw else "false"
                if is_null(raw):
                    return null_result
                try:
                    return canonical(normalize(raw))
                except InvalidValue as exc:
                    raise InvalidCell(column, str(exc)) from None
                except Exception as exc:
                    raise InvalidCell(column, _unexpected(raw, exc)) from None

        else:

            def convert(row: Mapping[str, Any]) -> Any:
                return finish(row.get(column, MISSING))

    return CompiledField(
        key=field.key, column=field.column, field=field, declared=declared, convert=convert
    )


def compile_mapping(
    mapping: Mapping[str, FieldSpec] | Sequence[Field],
) -> list[CompiledField]:
    """Validate a mapping and compile it; raise :class:`ConfigurationError` naming the problem."""
    fields: list[Field] = []
    given: object = mapping  # callers may pass anything at run time
    if isinstance(given, (str, bytes)) or not isinstance(given, (Mapping, Iterable)):
        raise ConfigurationError(
            "mapping must be a {column: attribute_key} dict (values may be Field objects) "
            f"or a list of Field objects, not {type(given).__name__}"
        )
    if isinstance(mapping, Mapping):
        for column, spec in mapping.items():
            if not isinstance(column, str) or not column:
                raise ConfigurationError(f"mapping column names must be non-empty text: {column!r}")
            if isinstance(spec, str):
                fields.append(Field(spec, column=column))
            elif isinstance(spec, Field):
                if spec.is_static or spec.compute is not None:
                    fields.append(spec)
                elif spec.column is not None and spec.column != column:
                    raise ConfigurationError(
                        f"mapping[{column!r}] is a Field for column {spec.column!r}; "
                        "leave Field.column out in a {column: Field(...)} mapping"
                    )
                else:
                    fields.append(attrs.evolve(spec, column=column))
            else:
                raise ConfigurationError(
                    f"mapping[{column!r}] must be an attribute key (text) or a Field, "
                    f"not {type(spec).__name__}"
                )
    else:
        for spec in mapping:
            if not isinstance(spec, Field):
                raise ConfigurationError(
                    f"a list mapping holds Field objects, not {type(spec).__name__}"
                )
            fields.append(spec)
    if not fields:
        raise ConfigurationError("mapping is empty: map at least one column to an attribute key")
    seen: dict[str, Field] = {}
    for field in fields:
        if not isinstance(field.key, str):  # before any repr(): user objects may break it
            raise ConfigurationError(
                f"attribute keys are text, not {type(field.key).__name__}: "
                "Field('plan_tier', column='plan')"
            )
        if (
            not ATTRIBUTE_KEY_PATTERN.fullmatch(field.key)
            or len(field.key) > MAX_ATTRIBUTE_KEY_LENGTH
        ):
            raise ConfigurationError(
                f"{field.key!r} is not a valid attribute key: use ASCII letters, digits and '_' "
                f"(no '-', '.' or spaces), at most {MAX_ATTRIBUTE_KEY_LENGTH} characters"
            )
        if field.key.upper() in PRESET_ATTRIBUTE_NAMES:
            raise ConfigurationError(
                f"{field.key!r} is the name of the preset attribute {field.key.upper()}, which the "
                "edge sets itself from each visit: a sync cannot write it, and Personalize "
                "refuses a custom attribute of that name (create_missing_attributes cannot help). "
                f"Map the column to another key, e.g. 'customer_{field.key.lower()}'"
            )
        if field.key in seen:
            raise ConfigurationError(f"attribute key {field.key!r} is mapped more than once")
        sources = sum([field.is_static, field.compute is not None, field.column is not None])
        if sources != 1:
            raise ConfigurationError(
                f"field {field.key!r} needs exactly one of column=, value= or compute="
            )
        if field.transform is not None and not callable(field.transform):
            raise ConfigurationError(f"field {field.key!r}: transform must be callable")
        seen[field.key] = field
    return [_compile(field) for field in fields]
