"""Small shared types: the ``NOT_GIVEN`` sentinel that tells "unset" apart from ``None``."""

from __future__ import annotations

import enum
from typing import Final, Literal, TypeAlias, TypeVar

__all__ = ["NOT_GIVEN", "NotGiven", "NotGivenOr"]

_T = TypeVar("_T")


class NotGiven(enum.Enum):
    """The type of :data:`NOT_GIVEN`: an argument the caller did not pass.

    Example: ``client.attributes.update(uid, description=None)`` clears the description, while
    leaving ``description`` out (``NOT_GIVEN``) keeps it.
    """

    NOT_GIVEN = "NOT_GIVEN"

    def __bool__(self) -> Literal[False]:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Final = NotGiven.NOT_GIVEN

NotGivenOr: TypeAlias = _T | NotGiven
