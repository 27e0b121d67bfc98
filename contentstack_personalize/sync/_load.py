"""Stage: load. Reads the source and matches, maps and checks every row into the spool.

Each row either lands in the spool (its UID and the canonical JSON of every mapped attribute) or
is counted invalid with every problem it has, so one pass over the data finds them all. Loading
pauses after each chunk (and every :data:`LOAD_SLICE` seconds) so that an async host's event loop
gets a turn, and stops there when the run is asked to stop; at every pause what was read is in
the spool or counted, so the tally's ``read`` always equals the rows it accounts for.
"""

from __future__ import annotations

import difflib
import logging
import time
from collections.abc import Generator, Mapping, Sequence
from typing import Any

import attrs

from .._http import user_uid_problem
from ..errors import ConfigurationError
from ._control import RunControl
from ._fields import CompiledField, InvalidCell
from ._partition import partition_of
from ._sources import DEFAULT_CHUNK, InvalidRow, open_source
from ._spool import Spool
from ._tally import Tally
from ._typecheck import TypeCheck, TypeChecker, TypeIssue
from ._uids import uid_from_value
from ._values import MISSING, _encode_str

__all__ = ["LOAD_SLICE", "Loader"]

logger = logging.getLogger("contentstack_personalize.sync")

#: Seconds the event loop may be held while rows are read and mapped before it gets a turn.
LOAD_SLICE = 0.02
#: At most this many problems of one row are spelled out (the rest are counted).
MAX_ROW_PROBLEMS = 5


@attrs.frozen
class Loader:
    """How a sync reads rows: the match column, the compiled mapping and the type policy."""

    name: str
    match_on: str
    fields: Sequence[CompiledField]
    chunk_size: int = DEFAULT_CHUNK
    type_check: TypeCheck = "warn"

    def load(
        self,
        rows: Any,
        spool: Spool,
        tally: Tally,
        expectations: Mapping[str, tuple[set[str], list[str]]],
        control: RunControl | None = None,
    ) -> list[TypeIssue]:
        """:meth:`steps` in one go."""
        steps = self.steps(rows, spool, tally, expectations, control)
        while True:
            try:
                next(steps)
            except StopIteration as stop:
                issues: list[TypeIssue] = stop.value
                return issues

    def steps(
        self,
        rows: Any,
        spool: Spool,
        tally: Tally,
        expectations: Mapping[str, tuple[set[str], list[str]]],
        control: RunControl | None = None,
    ) -> Generator[None, None, list[TypeIssue]]:
        """Read the source, match and map every row into the spool, pausing after each chunk
        (and stopping there when the run is asked to stop). Returns (as the generator's value)
        the type issues found in the columns. ``expectations`` are what audience rules expect
        of each key (see :func:`expectations_from_audiences`)."""
        source = open_source(rows, chunk_size=self.chunk_size)
        needed = [self.match_on] + [f.column for f in self.fields if f.column is not None]
        # Columns known up front are checked before reading; for plain iterables, whose rows
        # may each have other keys, a column is missing only if no row at all has it.
        unseen: set[str] = set()
        if source.columns is not None:
            missing = [c for c in dict.fromkeys(needed) if c not in source.columns]
            if missing:
                raise ConfigurationError(
                    f"column{'s' if len(missing) > 1 else ''} {missing} not found in the "
                    f"{source.description}{did_you_mean(missing, source.columns)}; its columns "
                    f"are {list(source.columns)}"
                )
        else:
            unseen = set(needed)
        seen_keys: list[str] = []
        match_on = self.match_on
        partition = control.partition if control is not None else None
        owner = partition.owns if partition is not None else None
        owner_count = partition.count if partition is not None else 1
        # The key part of each spooled pair never changes: encode it once per run.
        converters = [(f.key, _encode_str(f.key) + ":", f.convert) for f in self.fields]
        checker = TypeChecker(self.fields, expectations, self.type_check)
        check = checker.check if checker.active else None
        good: list[tuple[int, str, str]] = []
        uids: list[tuple[str, int]] = []
        chunk = self.chunk_size
        row_number = 0
        clock = time.perf_counter
        slice_started = clock()
        try:
            for row in source.rows:
                row_number += 1
                if not row_number & 127 and clock() - slice_started > LOAD_SLICE:
                    # Let an async host's loop breathe between chunks too (a DataFrame chunk
                    # takes far longer to map than a heartbeat's interval). What was read so
                    # far is spooled first, so the counts add up wherever the run stops.
                    spool.add(good, uids)
                    good.clear()
                    uids.clear()
                    tally.read = row_number - 1
                    yield
                    slice_started = clock()
                    if control:
                        row_number -= 1  # this row was not read into the run
                        break
                if not isinstance(row, Mapping):
                    tally.invalid_row(
                        row_number,
                        None,
                        row.reason
                        if isinstance(row, InvalidRow)
                        else f"row is a {type(row).__name__}, not a mapping of column -> value "
                        "(for tuples, pass a DB-API cursor or build dicts)",
                    )
                    continue
                if unseen:
                    unseen.difference_update([c for c in unseen if c in row])
                    if not seen_keys:
                        seen_keys = [str(k) for k in row]
                raw_uid = row.get(match_on, MISSING)
                uid = (
                    raw_uid if type(raw_uid) is str and user_uid_problem(raw_uid) is None else None
                )
                if uid is None:
                    uid, reason = uid_from_value(raw_uid)
                    if uid is None:
                        tally.invalid_row(row_number, None, reason or "bad user UID", match_on)
                        continue
                if owner is not None and not owner(uid):
                    tally.invalid_row(
                        row_number,
                        uid,
                        f"the user UID belongs to partition {partition_of(uid, owner_count)} of "
                        f"{owner_count}, not this one: split rows with partition_of(uid, "
                        f"{owner_count})",
                        match_on,
                    )
                    continue
                uids.append((uid, row_number))
                parts: list[str] = []
                problems: list[InvalidCell] | None = None
                for key, prefix, convert in converters:
                    try:
                        value = convert(row)
                        if type(value) is str:
                            if check is not None:
                                value = check(row_number, key, value)
                            parts.append(prefix + _encode_str(value))
                    except InvalidCell as cell:
                        # Every problem of the row, so one pass over the data finds them all.
                        if problems is None:
                            problems = []
                        problems.append(cell)
                if problems is None:
                    good.append((row_number, uid, "{" + ",".join(parts) + "}"))
                else:
                    tally.invalid_row(row_number, uid, *row_problems(problems))
                if len(uids) >= chunk:
                    spool.add(good, uids)
                    good.clear()
                    uids.clear()
                    tally.read = row_number
                    yield
                    slice_started = clock()
                    if control:
                        break
            spool.add(good, uids)
        except GeneratorExit:
            raise
        except BaseException:
            # The source or a store failed mid-chunk: keep what was read so far, and count as
            # read exactly the rows that are counted invalid or in the spool.
            try:
                spool.add(good, uids)
            finally:
                tally.read = tally.invalid + spool.count()
            raise
        tally.read = row_number
        if unseen and row_number and not control:
            missing = sorted(unseen)
            raise ConfigurationError(
                f"column{'s' if len(missing) > 1 else ''} {missing} not found in any row of the "
                f"{source.description}{did_you_mean(missing, seen_keys)}; check the mapping and "
                f"match_on for typos (the first row has {seen_keys})"
            )
        issues = checker.issues()
        for issue in issues:
            logger.warning("sync %r: %s", self.name, issue.describe())
        return issues


def row_problems(problems: Sequence[InvalidCell]) -> tuple[str, str]:
    """The reason and column of a row with one or more invalid cells."""
    first = problems[0]
    if len(problems) == 1:
        return first.reason, first.column
    shown = [f"column {p.column!r}: {p.reason}" for p in problems[:MAX_ROW_PROBLEMS]]
    more = len(problems) - MAX_ROW_PROBLEMS
    if more > 0:
        shown.append(f"and {more} more column{'s' if more > 1 else ''}")
    return f"{first.reason} (also {'; '.join(shown[1:])})", first.column


def did_you_mean(missing: Sequence[str], columns: Sequence[str]) -> str:
    hints = []
    for name in missing:
        close = difflib.get_close_matches(name, [str(c) for c in columns], n=1, cutoff=0.6)
        if not close:
            folded = {str(c).lower().replace("-", "_").strip(): str(c) for c in columns}
            match = folded.get(name.lower().replace("-", "_").strip())
            close = [match] if match else []
        if close:
            hints.append(f"{name!r}: did you mean {close[0]!r}?")
    return f" ({'; '.join(hints)})" if hints else ""
