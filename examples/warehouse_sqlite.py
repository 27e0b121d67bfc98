"""Warehouse-style: sync the result of a SQL query over a DB-API 2.0 connection.

    python examples/warehouse_sqlite.py [--db PATH] [--state PATH] [--real]

sqlite3 stands in for the warehouse; any DB-API 2.0 connection works the same way (psycopg,
snowflake-connector-python, google-cloud-bigquery's dbapi, databricks-sql-connector, duckdb).
The query is streamed with ``fetchmany``: a model of millions of rows is never all in memory.
Without ``--db`` a small demo warehouse is built in a temporary file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import random
import sqlite3
import sys
import tempfile
from pathlib import Path

from _demo import personalize_environment

from contentstack_personalize import PersonalizeClient
from contentstack_personalize.sync import Field, Sync, SyncResult, from_sql

# The "model": one row per user, attributes computed in SQL where the data lives.
MODEL_SQL = """
    SELECT u.user_id,
           u.plan,
           COALESCE(SUM(o.amount), 0)  AS lifetime_value,
           COUNT(o.order_id)           AS order_count,
           MAX(o.ordered_at)           AS last_order_at
    FROM users u LEFT JOIN orders o ON o.user_id = u.user_id
    WHERE u.deleted = ?
    GROUP BY u.user_id, u.plan
    ORDER BY u.user_id
"""

MAPPING: dict[str, str | Field] = {
    "plan": "plan",
    "lifetime_value": Field("lifetime_value", type=float),
    "order_count": Field("order_count", type=int),
    # SQLite hands back text; the declared type checks it is ISO 8601 and normalises it.
    "last_order_at": Field("last_order_at", type=dt.datetime),
}


def build_demo_warehouse(path: Path, users: int = 200) -> None:
    """A tiny warehouse: users and their orders."""
    rng = random.Random(7)
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            CREATE TABLE users (user_id TEXT PRIMARY KEY, plan TEXT, deleted INTEGER);
            CREATE TABLE orders (order_id INTEGER PRIMARY KEY, user_id TEXT, amount REAL,
                                 ordered_at TEXT);
            """
        )
        db.executemany(
            "INSERT INTO users VALUES (?, ?, 0)",
            [(f"w{i:05d}", rng.choice(["free", "pro", "enterprise"])) for i in range(users)],
        )
        start = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
        db.executemany(
            "INSERT INTO orders (user_id, amount, ordered_at) VALUES (?, ?, ?)",
            [
                (
                    f"w{rng.randrange(users):05d}",
                    round(rng.uniform(5, 500), 2),
                    (start + dt.timedelta(minutes=rng.randrange(500_000))).isoformat(),
                )
                for _ in range(users * 3)
            ],
        )


def sync_model(connection: sqlite3.Connection, state: Path) -> SyncResult:
    """Run the model's query and sync its rows; only changed users are sent."""
    with (
        PersonalizeClient() as client,
        Sync(
            client,
            match_on="user_id",
            mapping=MAPPING,
            state=str(state),
            name="warehouse/users",  # a stable name: the state is keyed by it
            create_missing_attributes=True,
        ) as sync,
    ):
        return sync.run(from_sql(connection, MODEL_SQL, [0]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="an SQLite file with users and orders tables")
    parser.add_argument("--state", type=Path, help="state file (default: a temporary one)")
    parser.add_argument("--real", action="store_true", help="use the project in the environment")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    with tempfile.TemporaryDirectory() as tmp, personalize_environment(args.real):
        db_path = args.db or Path(tmp) / "warehouse.db"
        if args.db is None:
            build_demo_warehouse(db_path)
        state = args.state or Path(tmp) / "state.db"
        connection = sqlite3.connect(db_path)
        try:
            first = sync_model(connection, state)
            print(first.summary(), "\n")

            # New data lands in the warehouse: one order. The next run sends one user.
            connection.execute(
                "INSERT INTO orders (user_id, amount, ordered_at) VALUES (?, ?, ?)",
                ("w00001", 42.0, "2025-06-01T12:00:00+00:00"),
            )
            connection.commit()
            second = sync_model(connection, state)
            print(second.summary())
        finally:
            connection.close()
    return 0 if first.ok and second.ok else 1


if __name__ == "__main__":
    sys.exit(main())
