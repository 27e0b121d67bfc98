"""A sync's options: one attrs class whose validators run when it is made and on every
assignment, so ``sync.concurrency = 0`` is refused like ``Sync(..., concurrency=0)``.

:class:`~contentstack_personalize.sync.Sync` keeps its keyword arguments and its attributes
(``sync.concurrency``, ``sync.lock_timeout``...): they read and write :attr:`Sync.options`.
"""

from __future__ import annotations

import os
from typing import Any, Generic, Protocol, TypeVar, overload

import attrs

from ..debugger import Debugger
from ..errors import ConfigurationError
from ..state import CHANGE_LOG_MODES, ChangeLogMode
from ._diff import OnDuplicate
from ._result import AlertEvaluator
from ._sources import DEFAULT_CHUNK
from ._typecheck import TypeCheck

__all__ = ["OPTION_NAMES", "OnDuplicate", "Option", "SyncOptions"]

_T = TypeVar("_T")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _choice(name: str, choices: tuple[str, ...]) -> Any:
    spelled = ", ".join(repr(c) for c in choices[:-1]) + f" or {choices[-1]!r}"

    def check(instance: Any, attribute: Any, value: Any) -> None:
        if value not in choices:
            raise ConfigurationError(f"{name} must be {spelled}")

    return check


def _positive_int(message: str) -> Any:
    def check(instance: Any, attribute: Any, value: Any) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigurationError(message)

    return check


def _positive_number(message: str) -> Any:
    def check(instance: Any, attribute: Any, value: Any) -> None:
        if not _number(value) or not value > 0:
            raise ConfigurationError(message)

    return check


def _seconds(message: str) -> Any:
    def check(instance: Any, attribute: Any, value: Any) -> None:
        if not _number(value) or not value >= 0:
            raise ConfigurationError(message)

    return check


def _to_float(value: Any) -> Any:
    """Numbers become floats; anything else is left for the validator to refuse."""
    return float(value) if _number(value) else value


def _match_on(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(
            "match_on must name the column holding the Personalize User UID, "
            'e.g. match_on="user_id"'
        )


def _requests_per_second(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None and (not _number(value) or not value > 0):
        raise ConfigurationError("requests_per_second must be positive (or None)")


def _ratio(instance: Any, attribute: Any, value: Any) -> None:
    if not _number(value) or not 0 < value <= 1:
        raise ConfigurationError("max_rejection_ratio must be in (0, 1]")


def _max_issue_details(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigurationError("max_issue_details must be an integer >= 0")


def _debugger(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None and not isinstance(value, (bool, Debugger)):
        raise ConfigurationError("debugger must be None, True, False or a Debugger(...)")


def _spool_path(value: Any) -> Any:
    return os.fspath(value) if isinstance(value, (str, os.PathLike)) else value


def _spool_dir(instance: Any, attribute: Any, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not os.path.isdir(value):
        raise ConfigurationError(
            f"spool_dir {value!r} is not a directory; create it or point spool_dir= "
            "at a disk with room for the run's rows (about 190 MB per million)"
        )


_MUST_BE_POSITIVE = "must be positive (commit_every, chunk_size and min_sample: integers >= 1)"

_CHECKED = attrs.setters.pipe(attrs.setters.convert, attrs.setters.validate)


@attrs.define(on_setattr=_CHECKED)
class SyncOptions:
    """How a :class:`~contentstack_personalize.sync.Sync` runs (see its arguments). Every
    value is checked when the options are made and whenever one is assigned; a bad one raises
    :class:`~contentstack_personalize.errors.ConfigurationError`."""

    match_on: str = attrs.field(validator=_match_on)
    on_duplicate: OnDuplicate = attrs.field(
        default="reject_all", validator=_choice("on_duplicate", ("reject_all", "first", "last"))
    )
    concurrency: int = attrs.field(
        default=32, validator=_positive_int("concurrency must be a positive integer")
    )
    requests_per_second: float | None = attrs.field(default=None, validator=_requests_per_second)
    check_attributes: bool = True
    create_missing_attributes: bool = False
    max_rejection_ratio: float = attrs.field(default=0.5, validator=_ratio)
    min_sample: int = attrs.field(
        default=100, validator=_positive_int(f"min_sample {_MUST_BE_POSITIVE}")
    )
    raise_on_abort: bool = True
    commit_every: int = attrs.field(
        default=500, validator=_positive_int(f"commit_every {_MUST_BE_POSITIVE}")
    )
    commit_interval: float = attrs.field(
        default=1.0,
        converter=_to_float,
        validator=_positive_number("commit_interval must be a positive number of seconds"),
    )
    chunk_size: int = attrs.field(
        default=DEFAULT_CHUNK, validator=_positive_int(f"chunk_size {_MUST_BE_POSITIVE}")
    )
    max_issue_details: int = attrs.field(default=10_000, validator=_max_issue_details)
    type_check: TypeCheck = attrs.field(
        default="warn", validator=_choice("type_check", ("warn", "coerce", "reject", "off"))
    )
    debugger: bool | Debugger | None = attrs.field(default=None, validator=_debugger)
    alerts: AlertEvaluator | None = None
    lock_timeout: float = attrs.field(
        default=0.0,
        converter=_to_float,
        validator=_seconds(
            "lock_timeout must be a number of seconds >= 0 (0: fail at once when another "
            "run of this sync holds its lock)"
        ),
    )
    stop_grace: float = attrs.field(
        default=10.0,
        converter=_to_float,
        validator=_seconds("stop_grace must be a number of seconds >= 0"),
    )
    spool_dir: str | None = attrs.field(default=None, converter=_spool_path, validator=_spool_dir)
    change_log: ChangeLogMode = attrs.field(
        default="values", validator=_choice("change_log", CHANGE_LOG_MODES)
    )
    change_log_days: float = attrs.field(
        default=30.0,
        converter=_to_float,
        validator=_positive_number("change_log_days must be a positive number of days"),
    )


#: The names of the options, each also an attribute of ``Sync``.
OPTION_NAMES = tuple(a.name for a in attrs.fields(SyncOptions))


class _HasOptions(Protocol):
    options: SyncOptions


class Option(Generic[_T]):
    """An attribute of ``Sync`` that reads and writes (validated) ``sync.options.<name>``."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type) -> Option[_T]: ...

    @overload
    def __get__(self, instance: _HasOptions, owner: type) -> _T: ...

    def __get__(self, instance: _HasOptions | None, owner: type) -> Option[_T] | _T:
        if instance is None:
            return self
        value: _T = getattr(instance.options, self.name)
        return value

    def __set__(self, instance: _HasOptions, value: _T) -> None:
        setattr(instance.options, self.name, value)
