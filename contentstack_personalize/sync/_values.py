"""Value normalisation and canonical encoding: the per-cell part of the sync engine's hot path.

Every source value becomes a JSON value (or is refused with a reason), then gets one canonical
JSON text used both to compare with the last accepted state and to build the PATCH body. Third-
party types (numpy, pandas) are recognised by duck typing, never imported.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

__all__ = ["MISSING", "InvalidValue", "canonical", "is_null", "normalize"]

_encode_str = json.encoder.encode_basestring
_dumps = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), sort_keys=True
).encode


#: Integers beyond this many bits (about 4,000 digits) are refused: no attribute needs them, and
#: Python refuses to print integers past 4,300 digits.
_MAX_INT_BITS = 13_000
_MAX_DIGITS = 4_000
_TOO_LARGE = "the number is too large (more than 4,000 digits)"


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
    try:
        return bool(value != value)  # NaN-like objects, e.g. numpy.float64('nan'), Decimal NaN
    except Exception:
        return False


def _iso(value: dt.date | dt.datetime | dt.time) -> str:
    return value.isoformat()


def normalize(value: Any, _depth: int = 0) -> Any:
    """Turn a source value into a JSON value.

    - ``None``/NaN/NaT/NA -> ``None``;
    - numpy and pandas scalars -> their Python value (``.item()``), timestamps -> ISO 8601;
    - ``Decimal`` -> ``int`` when integral, else ``float`` (refused if that loses digits);
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
        if value.bit_length() > _MAX_INT_BITS:
            raise InvalidValue(_TOO_LARGE)
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
    if _depth > 32:
        raise InvalidValue("value is nested more than 32 levels deep")
    if isinstance(value, str):  # str subclasses (e.g. enum members with str mixin)
        return normalize(str(value))
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
        if value.adjusted() > _MAX_DIGITS:
            raise InvalidValue(_TOO_LARGE)
        if value == value.to_integral_value():
            return int(value)
        as_float = float(value)
        if Decimal(repr(as_float)) != value.normalize():
            raise InvalidValue(f"Decimal {value} cannot be represented exactly as a JSON number")
        return as_float
    if isinstance(value, dt.datetime):
        return _iso(value)
    if isinstance(value, (dt.date, dt.time)):
        return _iso(value)
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
    raise InvalidValue(f"a {t.__name__} cannot be sent as JSON")


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
    if name == "ndarray":
        return [normalize(item, depth + 1) for item in value.tolist()]
    item = getattr(value, "item", None)
    if callable(item):
        return normalize(item(), depth + 1)
    raise InvalidValue(f"a {type(value).__name__} cannot be sent as JSON")


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
