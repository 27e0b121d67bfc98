"""A tiny SQLite "warehouse" built from the sample users, shared by the integration examples."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

USERS_CSV = Path(__file__).resolve().parent.parent / "data" / "users.csv"


def build_warehouse(path: Path, csv_path: Path = USERS_CSV) -> Path:
    """Load ``csv_path`` into a ``users`` table of a new SQLite file at ``path``."""
    with open(csv_path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    columns = list(rows[0])
    with sqlite3.connect(path) as db:
        db.execute(f"CREATE TABLE users ({', '.join(f'{c} TEXT' for c in columns)})")
        db.executemany(
            f"INSERT INTO users VALUES ({', '.join('?' for _ in columns)})",
            [[row[c] or None for c in columns] for row in rows],
        )
    return path
