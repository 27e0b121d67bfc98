"""Where the sync engine takes value normalisation from: it lives in the core
(``contentstack_personalize._values``) because the resources use the same rules."""

from .._values import MISSING, InvalidValue, _encode_str, canonical, is_null, normalize

__all__ = ["MISSING", "InvalidValue", "_encode_str", "canonical", "is_null", "normalize"]
