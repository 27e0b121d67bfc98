"""Stage: the spool, the mapped rows of one run kept on disk while the run goes.

Reading streams the whole source into the spool first (constant memory), so that a duplicate
UID anywhere in the source invalidates every occurrence before anything is sent. The diff then
walks it in source order. A plan also keeps its changes here (the ``changes`` table that
:class:`~contentstack_personalize.sync.Plan` reads lazily).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence

__all__ = ["DIFF_CHUNK", "Spool", "SpooledRow"]

#: Spool rows the diff reads (and compares with the state) at a time.
DIFF_CHUNK = 500

#: One valid row as the diff reads it: ``(row, uid, payload, n, first, last)``, where ``n`` is
#: how many rows of the source carry that UID and ``first``/``last`` are the first and last.
SpooledRow = tuple[int, str, str, int, int, int]


class Spool:
    """A private temporary SQLite database (on disk, deleted on close): in SQLite's temporary
    directory, or in ``directory`` when given."""

    def __init__(self, directory: str | None = None) -> None:
        self._path: str | None = None
        target = ""
        if directory is not None:
            fd, self._path = tempfile.mkstemp(prefix="personalize-spool-", dir=directory)
            os.close(fd)
            target = self._path
        self.db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("PRAGMA cache_size=-16000")  # 16 MB of page cache, then disk
        self.db.execute("BEGIN")
        self.db.execute(
            "CREATE TABLE rows (row INTEGER PRIMARY KEY, uid TEXT NOT NULL, payload TEXT NOT NULL)"
        )
        self.db.execute(
            "CREATE TABLE uids (uid TEXT PRIMARY KEY, n INTEGER NOT NULL, first INTEGER NOT NULL, "
            "last INTEGER NOT NULL) WITHOUT ROWID"
        )
        self.db.execute(
            "CREATE TABLE changes (seq INTEGER PRIMARY KEY, uid TEXT, key TEXT, old TEXT, "
            "new TEXT, first INTEGER)"
        )
        self.db.execute("COMMIT")

    @property
    def path(self) -> str | None:
        """The spool's file when it was made in a given directory (else SQLite's own)."""
        return self._path

    def add(self, rows: Sequence[tuple[int, str, str]], uids: Sequence[tuple[str, int]]) -> None:
        """Keep valid rows ``(row, uid, payload)`` and count every matched UID ``(uid, row)``
        (valid or not: an invalid occurrence still makes a UID a duplicate)."""
        db = self.db
        db.execute("BEGIN")
        if rows:
            db.executemany("INSERT INTO rows VALUES (?, ?, ?)", rows)
        if uids:
            db.executemany(
                "INSERT INTO uids VALUES (?, 1, ?, ?) ON CONFLICT (uid) DO UPDATE "
                "SET n = n + 1, last = excluded.last",
                [(uid, row, row) for uid, row in uids],
            )
        db.execute("COMMIT")

    def count(self) -> int:
        """How many valid rows the spool holds."""
        (n,) = self.db.execute("SELECT count(*) FROM rows").fetchone()
        return int(n)

    def valid_rows(self) -> Iterator[list[SpooledRow]]:
        """The valid rows in source order, :data:`DIFF_CHUNK` at a time."""
        cursor = self.db.execute(
            "SELECT r.row, r.uid, r.payload, u.n, u.first, u.last FROM rows r "
            "JOIN uids u ON u.uid = r.uid ORDER BY r.row"
        )
        while True:
            batch = cursor.fetchmany(DIFF_CHUNK)
            if not batch:
                return
            yield batch

    def rows_after(self, row: int) -> Iterator[tuple[int, str]]:
        """``(row, uid)`` of the valid rows after ``row``, in source order: the rows a run that
        stopped early never compared with the state."""
        cursor = self.db.execute("SELECT row, uid FROM rows WHERE row > ? ORDER BY row", (row,))
        while True:
            batch = cursor.fetchmany(DIFF_CHUNK)
            if not batch:
                return
            yield from batch

    def add_changes(self, changes: Sequence[tuple[str, str, str | None, str, int]]) -> None:
        """Keep a plan's changes ``(uid, key, old, new, first_time)`` for it to read later."""
        if changes:
            self.db.executemany(
                "INSERT INTO changes (uid, key, old, new, first) VALUES (?, ?, ?, ?, ?)", changes
            )

    def close(self) -> None:
        self.db.close()
        if self._path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._path)
