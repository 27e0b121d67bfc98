"""Stage helper: match. A row's match value becomes its user UID, or a reason it cannot."""

from __future__ import annotations

import enum
import math
from decimal import Decimal
from typing import Any

from .._http import user_uid_problem
from ._values import MISSING, is_null

__all__ = ["uid_from_value"]


def uid_from_value(value: Any) -> tuple[str | None, str | None]:
    """``(uid, None)`` for a usable match value, else ``(None, reason)``.

    Integers become their decimal text (42 -> "42"), and so do integral floats (42.0 from a
    DataFrame column that also holds NaN); text is used as it is.
    """
    t = type(value)
    if t is str:
        text = value
    elif value is MISSING:
        return None, "the match column is missing from this row"
    elif is_null(value):
        return None, "the user UID is null"
    elif t is bool or isinstance(value, bool):
        return None, f"the user UID is a boolean ({value!r})"
    elif isinstance(value, int):
        if int(value).bit_length() > 3500:  # over 1,000 digits: no header takes it
            return None, "the user UID is longer than 1024 characters"
        text = str(int(value))
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            return None, f"the user UID {value!r} is not an integral number"
        if abs(value) > 2**53:
            return None, (
                f"the user UID {value!r} is a float above 2**53 and may have been rounded; "
                "load the column as integers or text (e.g. .astype('Int64') in pandas)"
            )
        text = str(int(value))
    elif isinstance(value, Decimal):
        if not value.is_finite() or value != value.to_integral_value():
            return None, f"the user UID {value} is not an integral number"
        if value.is_zero():
            return "0", None  # 0E+5000 is zero, however large its exponent
        if value.adjusted() >= 1024:
            return None, "the user UID is longer than 1024 characters"
        text = str(int(value))
    elif isinstance(value, enum.Enum):  # str(Plan.GOLD) is "Plan.GOLD": the UID is its value
        return uid_from_value(value.value)
    elif isinstance(value, str):
        text = str.__str__(value)
    elif isinstance(value, (bytes, bytearray)):
        try:
            text = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None, "the user UID is bytes that are not UTF-8 text"
    elif hasattr(value, "item") and type(value).__module__.startswith("numpy"):
        if type(value).__name__ == "ndarray":  # an array (even of one value), not a scalar
            return None, f"the user UID is a numpy array of {value.size} values, not one value"
        return uid_from_value(value.item())
    else:
        return None, f"the user UID is a {type(value).__name__}, not text or an integer"
    problem = user_uid_problem(text)
    if problem is not None:
        return None, problem
    return text, None
