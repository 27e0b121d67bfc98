"""Stage: the diff. Compares the spooled rows with the state and says what to send.

The diff only reads: it yields, one spool batch at a time, a :class:`DiffBatch` holding the
users that need a request (:class:`Work`), the duplicates judged invalid, how many rows are
unchanged, and the users whose earlier failures can be forgotten. Writing (the write-ahead of
pending keys, acknowledgements) is the commit stage's job, and counting the tally's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Literal

import attrs

from ..state import StateStore, UserState
from ._spool import Spool
from ._values import _encode_str

__all__ = ["DiffBatch", "OnDuplicate", "Work", "diff"]

#: A UID appearing more than once in one run: every occurrence is invalid, or the first or the
#: last one wins (the others are invalid).
OnDuplicate = Literal["reject_all", "first", "last"]


@attrs.frozen
class Work:
    """One user's request: the changed keys (canonical JSON values) and the state around it."""

    row: int
    uid: str
    body: bytes
    changed: dict[str, str]
    new_state: dict[str, str | None]
    old_state: dict[str, str | None]
    first_time: bool
    retried: bool

    def pending_state(self) -> dict[str, str | None]:
        """The state written ahead of the send: the keys being sent become unknown."""
        return {**self.old_state, **dict.fromkeys(self.changed)}


@attrs.frozen
class DiffBatch:
    """What the diff found in one batch of spool rows (every row in exactly one of ``works``,
    ``duplicates`` or ``unchanged``)."""

    #: The users to send, in source order.
    works: list[Work]
    #: ``(row, uid, reason)`` of the occurrences of a duplicate UID that are invalid.
    duplicates: list[tuple[int, str, str]]
    #: How many rows need no request.
    unchanged: int
    #: Unchanged users whose earlier failures can be forgotten.
    clear: list[str]
    #: The last spool row of the batch: every row up to it has been judged.
    last_row: int

    @property
    def pending(self) -> list[tuple[str, dict[str, str | None]]]:
        """The write-ahead of this batch: each user's state with the keys to send unknown."""
        return [(w.uid, w.pending_state()) for w in self.works]


def diff(
    spool: Spool,
    store: StateStore,
    name: str,
    keys: Sequence[str],
    *,
    on_duplicate: OnDuplicate = "reject_all",
    full: bool = False,
) -> Iterator[DiffBatch]:
    """Compare every valid spooled row with the state of sync ``name`` in ``store``.

    A key whose edge value is unknown (``None`` in the state: sent without an acknowledgement)
    always differs, so it is sent whatever the source says; ``full`` sends every key. A user
    with failed attempts on record is sent as ``retried`` (or, when nothing changed, listed in
    ``clear``)."""
    loads = json.loads
    prefixes = {key: _encode_str(key) + ":" for key in keys}
    for batch in spool.valid_rows():
        states = store.load(name, [r[1] for r in batch])
        works: list[Work] = []
        duplicates: list[tuple[int, str, str]] = []
        clear: list[str] = []
        unchanged = 0
        for row, uid, payload, n, first, last in batch:
            if n > 1:
                if on_duplicate == "reject_all":
                    duplicates.append((row, uid, f"user UID appears {n} times in the source"))
                    continue
                if on_duplicate == "first" and row != first:
                    duplicates.append((row, uid, f"duplicate of row {first}"))
                    continue
                if on_duplicate == "last" and row != last:
                    duplicates.append((row, uid, f"superseded by row {last}"))
                    continue
            desired: dict[str, str] = loads(payload)
            st: UserState | None = states.get(uid)
            old = st.attrs if st is not None else {}
            if full:
                changed = desired
            else:
                changed = {k: v for k, v in desired.items() if old.get(k) != v}
            failed_before = st is not None and st.failed_attempts > 0
            if not changed:
                unchanged += 1
                if failed_before:
                    clear.append(uid)
                continue
            body = "{" + ",".join(prefixes[k] + v for k, v in changed.items()) + "}"
            works.append(
                Work(
                    row=row,
                    uid=uid,
                    body=body.encode("utf-8"),
                    changed=changed,
                    new_state={**old, **changed},
                    old_state=old,
                    # "added": no acknowledged value on record (new, or all keys unknown)
                    first_time=all(v is None for v in old.values()),
                    retried=failed_before,
                )
            )
        yield DiffBatch(works, duplicates, unchanged, clear, batch[-1][0])
