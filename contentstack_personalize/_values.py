"""Value normalisation and canonical encoding: the per-cell part of the sync engine's hot path.

Every source value becomes a JSON value (or is refused with a reason), then gets one canonical
JSON text used both to compare with the last accepted state and to build the PATCH body. Third-
party types (numpy, pandas) are recognised by duck typing, never imported.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

__all__ = ["MAX_SAFE_INTEGER", "MISSING", "InvalidValue", "canonical", "is_null", "normalize"]

_encode_str = json.encoder.encode_basestring
_dumps = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), sort_keys=True
).encode


#: The largest integer a JSON number carries exactly through JavaScript (and most JSON parsers,
#: which read numbers as IEEE doubles): 2**53 - 1. Larger integers are refused, not rounded.
MAX_SAFE_INTEGER = 2**53 - 1
_MAX_DIGITS = 4_000
_TOO_LARGE = "the number is too large (more than 4,000 digits)"


def _unsafe_integer(value: int) -> InvalidValue:
    sign = "-" if value < 0 else ""
    digits = len(str(abs(value))) if value.bit_length() < 13_000 else 4_000
    shown = str(value) if digits <= 30 else f"{sign}<{digits} digits>"
    return InvalidValue(
        f"{shown} is beyond \u00b12**53-1 (9007199254740991), the largest integer a JSON number "
        "holds exactly in JavaScript and most JSON parsers; send it as text "
        "(Field(..., type=str)) so no digit is lost"
    )


def _an(name: str) -> str:
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def describe(value: Any) -> str:
    """A short ``repr`` of ``value`` for messages; never raises (a broken ``__repr__`` too)."""
    try:
        text = repr(value)
    except Exception:
        return f"<{type(value).__name__} whose repr() failed>"
    return text if len(text) <= 60 else text[:57] + "..."


_DURATION = (
    "a duration (timedelta) has no JSON form; convert it, e.g. "
    "Field(..., transform=lambda d: d.total_seconds())"
)


class InvalidValue(Exception):
    """A value cannot become JSON; the message is the reason shown to the user."""


class _Missing:
    """A column absent from a row (different from an explicit null)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def is_null(value: Any) -> bool:
    """None, NaN, pandas NA/NaT, numpy NaT and the like."""
    if value is None or value is MISSING:
        return True
    if type(value) is float:
        return value != value
    if type(value) in (str, int, bool):
        return False
    name = type(value).__name__
    if name in ("NAType", "NaTType"):
        return True
    if name in ("datetime64", "timedelta64"):
        return str(value) == "NaT"
    if isinstance(value, Decimal):
        return value.is_nan()  # quiet and signalling (comparing an sNaN raises)
    if isinstance(value, enum.Enum):  # sent as its value, so null when its value is
        return is_null(value.value)
    try:
        return bool(value != value)  # NaN-like objects, e.g. numpy.float64('nan'), Decimal NaN
    except Exception:
        return False


def _iso(value: dt.date | dt.datetime | dt.time) -> str:
    return value.isoformat()


def normalize(value: Any, _depth: int = 0) -> Any:
    """Turn a source value into a JSON value.

    - ``None``/NaN/NaT/NA -> ``None``;
    - integers beyond +-(2**53 - 1) -> :class:`InvalidValue` (a JSON number cannot carry them
      exactly); send such IDs as text;
    - enum members -> their ``.value``;
    - numpy and pandas scalars -> their Python value (``.item()``), timestamps -> ISO 8601;
      ``float32``/``float16`` -> the shortest decimal that reads back as the same value
      (``np.float32(0.1)`` -> ``0.1``, as DataFrames show it);
    - ``Decimal`` -> ``int`` when integral, else ``float`` (refused if that loses digits);
    - durations (``timedelta``, numpy ``timedelta64``, pandas ``Timedelta``) -> refused;
    - ``datetime`` -> ISO 8601 (aware stays aware; naive stays naive), ``date`` -> ``YYYY-MM-DD``;
    - ``bytes`` -> UTF-8 text (refused when not valid UTF-8);
    - tuples, lists and sets -> lists (sets sorted), mappings with string keys -> objects;
    - infinities, other objects and nesting deeper than 32 levels -> :class:`InvalidValue`.
    """
    t = type(value)
    if t is str:
        if not value.isascii():
            _check_utf8(value)
        return value
    if t is int:
        if value.bit_length() > 53:
            raise _unsafe_integer(value)
        return value
    if t is bool or value is None:
        return value
    if t is float:
        if math.isfinite(value):
            return value
        if value != value:
            return None
        raise InvalidValue(f"{value} is not a finite number")
    if value is MISSING:
        return None
    if t.__name__ in ("NaTType", "NAType"):  # pandas' NaT is a datetime subclass: not a date
        return None
    if _depth > 32:
        raise InvalidValue("value is nested more than 32 levels deep")
    if isinstance(value, enum.Enum):  # str(Plan.GOLD) is "Plan.GOLD" on Python 3.11+
        return normalize(value.value, _depth + 1)
    if isinstance(value, str):  # other str subclasses
        return normalize(str.__str__(value))
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return normalize(int(value))
    if isinstance(value, float):
        return normalize(float(value))
    if isinstance(value, Decimal):
        if not value.is_finite():
            if value.is_nan():
                return None
            raise InvalidValue(f"{value} is not a finite number")
        if value.is_zero():
            return 0  # 0E+5000 is zero, however large its exponent
        if value.adjusted() > _MAX_DIGITS:
            raise InvalidValue(_TOO_LARGE)
        if value == value.to_integral_value():
            return normalize(int(value))
        as_float = float(value)
        if Decimal(repr(as_float)) != value.normalize():
            raise InvalidValue(f"Decimal {value} cannot be represented exactly as a JSON number")
        return as_float
    if isinstance(value, dt.datetime):
        return _iso(value)
    if isinstance(value, (dt.date, dt.time)):
        return _iso(value)
    if isinstance(value, dt.timedelta):
        raise InvalidValue(_DURATION)
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidValue("bytes are not valid UTF-8 text") from exc
    module = t.__module__
    if module.startswith(("numpy", "pandas")):
        return _normalize_foreign(value, _depth)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidValue(f"object key {key!r} is not a string")
            if not key.isascii():
                _check_utf8(key)
            out[key] = normalize(item, _depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [normalize(item, _depth + 1) for item in value]
    if isinstance(value, (set, frozenset)):
        items = [normalize(item, _depth + 1) for item in value]
        try:
            return sorted(items)
        except TypeError:
            return sorted(items, key=canonical)
    if is_null(value):
        return None
    raise InvalidValue(f"{_an(t.__name__)} cannot be sent as JSON")


def _check_utf8(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidValue(
            f"text contains a lone surrogate ({text[exc.start]!r}) that is not valid Unicode"
        ) from exc


def _normalize_foreign(value: Any, depth: int) -> Any:
    if is_null(value):
        return None
    name = type(value).__name__
    if name == "Timestamp":  # pandas
        return value.isoformat()
    if name == "datetime64":
        text = str(value)  # numpy gives ISO 8601 without a zone
        return text
    if name in ("timedelta64", "Timedelta"):
        raise InvalidValue(_DURATION)
    if name in ("float32", "float16"):
        # .item() widens to the binary value (0.10000000149011612); str() gives the shortest
        # text that reads back as the same float32, which is what the user sees and means.
        return normalize(float(str(value)), depth + 1)
    if name == "ndarray":
        if str(getattr(value, "dtype", "")) in ("float32", "float16"):
            return [normalize(item, depth + 1) for item in value]  # numpy scalars: see below
        return [normalize(item, depth + 1) for item in value.tolist()]
    item = getattr(value, "item", None)
    if callable(item):
        return normalize(item(), depth + 1)
    raise InvalidValue(f"{_an(type(value).__name__)} cannot be sent as JSON")


def canonical(value: Any) -> str:
    """The canonical JSON text of a normalised value (sorted keys, no spaces, UTF-8 kept)."""
    t = type(value)
    if t is str:
        return str(_encode_str(value))
    if t is bool:
        return "true" if value else "false"
    if t is int:
        return int.__repr__(value)
    if value is None:
        return "null"
    if t is float:
        return float.__repr__(value)
    return str(_dumps(value))
