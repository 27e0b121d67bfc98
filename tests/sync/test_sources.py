"""Every supported source streams into a sync: iterables, CSV files, DB-API cursors and queries,
pandas, polars and pyarrow (the optional ones only when installed)."""

from __future__ import annotations

import datetime as dt
import math
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contentstack_personalize import ConfigurationError
from contentstack_personalize.sync import Field, Sync, from_csv, from_sql
from contentstack_personalize.sync._sources import open_source
from contentstack_personalize.testing import PersonalizeEmulator
from tests._invariants import assert_accounted

EXPECTED = {
    "1": {"plan": "gold", "ltv": 10.5},
    "2": {"plan": "silver", "ltv": 20.0},
    "3": {"plan": "gold"},  # ltv is null: skipped
}
MAPPING = {"plan": "plan", "ltv": Field("ltv", type=float)}


def run(client: Any, source: Any, **kwargs: Any) -> Any:
    return Sync(client, match_on="user_id", mapping=MAPPING, **kwargs).run(source)


def check(emulator: PersonalizeEmulator, result: Any) -> None:
    assert (result.read, result.added, result.invalid) == (3, 3, 0)
    assert emulator.users() == EXPECTED


def test_generator_is_consumed_lazily(emulator: PersonalizeEmulator, client: Any) -> None:
    pulled: list[int] = []

    def rows() -> Iterator[dict[str, Any]]:
        for i, (plan, ltv) in enumerate([("gold", 10.5), ("silver", 20), ("gold", None)], 1):
            pulled.append(i)
            yield {"user_id": i, "plan": plan, "ltv": ltv}

    source = open_source(rows())
    assert pulled == []  # opening reads nothing
    check(emulator, run(client, source))


def test_csv_path_and_from_csv(emulator: PersonalizeEmulator, client: Any, tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    # a BOM, Windows line ends and an empty value, as spreadsheets write them
    path.write_bytes("\ufeffuser_id,plan,ltv\r\n1,gold,10.5\r\n2,silver,20\r\n3,gold,\r\n".encode())
    check(emulator, run(client, path))
    semi = tmp_path / "semi.csv"
    semi.write_text("user_id;plan;ltv\n1;gold;10.5\n2;silver;20\n3;gold;\n")
    emulator.reset()
    check(emulator, run(client, from_csv(semi, delimiter=";"), state=None))


def test_csv_errors_are_configuration_errors(client: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot open CSV"):
        run(client, tmp_path / "missing.csv")
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("id,plan,ltv\n1,gold,1\n")
    with pytest.raises(ConfigurationError, match=r"\['user_id'\] not found"):
        run(client, wrong)


def test_csv_rows_with_extra_fields_are_invalid(
    emulator: PersonalizeEmulator, client: Any, tmp_path: Path
) -> None:
    path = tmp_path / "u.csv"
    path.write_text("user_id,plan\na,gold\nb,silver,extra\n")
    result = Sync(client, match_on="user_id", mapping={"plan": "plan"}).run(path)
    assert_accounted(result, read=2)
    assert result.invalid == 1 and "more fields than the header" in result.invalid_rows[0].reason
    assert result.invalid_rows[0].row == 2
    assert list(emulator.users()) == ["a"]


def test_csv_duplicate_header_is_a_configuration_error(
    emulator: PersonalizeEmulator, client: Any, tmp_path: Path
) -> None:
    path = tmp_path / "u.csv"
    path.write_text("user_id,plan,plan\na,gold,silver\n")
    with pytest.raises(ConfigurationError, match="more than once"):
        Sync(client, match_on="user_id", mapping={"plan": "plan"}).run(path)
    assert emulator.users() == {}


def test_csv_decoding_error_names_the_line(
    emulator: PersonalizeEmulator, client: Any, tmp_path: Path
) -> None:
    path = tmp_path / "u.csv"
    path.write_bytes(b"user_id,plan\n" + b"a,gold\n" * 3000 + b"b,\xff\xfe\n")
    with pytest.raises(ConfigurationError, match="encoding") as info:
        Sync(client, match_on="user_id", mapping={"plan": "plan"}).run(path)
    # the decoder reads ahead, so the message names the last line read before the bad one
    line = re.search(r"after line (\d+)", str(info.value))
    assert line is not None and 1 <= int(line.group(1)) < 3002, str(info.value)
    assert emulator.users() == {}  # the run stops before anything is sent


def make_db() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE users (user_id INTEGER, plan TEXT, ltv REAL)")
    db.executemany(
        "INSERT INTO users VALUES (?, ?, ?)",
        [(1, "gold", 10.5), (2, "silver", 20), (3, "gold", None)],
    )
    return db


def test_dbapi_cursor(emulator: PersonalizeEmulator, client: Any) -> None:
    cursor = make_db().execute("SELECT user_id, plan, ltv FROM users ORDER BY user_id")
    check(emulator, run(client, cursor, chunk_size=2))


def test_from_sql_with_parameters(emulator: PersonalizeEmulator, client: Any) -> None:
    db = make_db()
    db.execute("INSERT INTO users VALUES (4, 'bronze', 1)")
    check(emulator, run(client, from_sql(db, "SELECT * FROM users WHERE user_id < ?", [4])))


def test_cursor_without_result_set(client: Any) -> None:
    cursor = make_db().cursor()
    with pytest.raises(ConfigurationError, match="no result set"):
        run(client, cursor)


def test_unreadable_source(client: Any) -> None:
    with pytest.raises(ConfigurationError, match="cannot read rows"):
        run(client, 42)
    with pytest.raises(ConfigurationError, match="single mapping"):
        run(client, {"user_id": 1})


def test_pandas_dataframe(emulator: PersonalizeEmulator, client: Any) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {"user_id": [1, 2, 3], "plan": ["gold", "silver", "gold"], "ltv": [10.5, 20, math.nan]}
    )
    check(emulator, run(client, frame, chunk_size=2))


def test_pandas_types(emulator: PersonalizeEmulator, client: Any) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {
            # float UIDs appear when an integer column holds a missing value
            "user_id": [1.0, 2.0, None],
            "n": pd.array([1, None, 3], dtype="Int64"),
            "when": pd.to_datetime(["2024-05-01T08:00:00Z", None, "2024-05-03T00:00:00Z"]),
            "flag": [True, False, True],
        }
    )
    result = Sync(
        client, match_on="user_id", mapping={"n": "n", "when": "when", "flag": "flag"}
    ).run(frame)
    assert result.invalid == 1 and "null" in result.invalid_rows[0].reason
    assert emulator.user_attributes("1") == {
        "n": 1,
        "when": "2024-05-01T08:00:00+00:00",
        "flag": True,
    }
    assert emulator.user_attributes("2") == {"flag": False}


def test_pandas_integer_column_names(emulator: PersonalizeEmulator, client: Any) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame([["a", "gold"], ["b", "silver"]])  # columns 0 and 1
    result = Sync(client, match_on="0", mapping={"1": "plan"}).run(frame)
    assert_accounted(result, read=2)
    assert result.added == 2
    assert emulator.users() == {"a": {"plan": "gold"}, "b": {"plan": "silver"}}


def test_polars_dataframe(emulator: PersonalizeEmulator, client: Any) -> None:
    pl = pytest.importorskip("polars")
    frame = pl.DataFrame(
        {"user_id": [1, 2, 3], "plan": ["gold", "silver", "gold"], "ltv": [10.5, 20.0, None]}
    )
    check(emulator, run(client, frame, chunk_size=2))
    emulator.reset()
    check(emulator, run(client, frame.lazy(), state=None))


def test_pyarrow_table_and_reader(emulator: PersonalizeEmulator, client: Any) -> None:
    pa = pytest.importorskip("pyarrow")
    table = pa.table(
        {"user_id": [1, 2, 3], "plan": ["gold", "silver", "gold"], "ltv": [10.5, 20.0, None]}
    )
    check(emulator, run(client, table, chunk_size=2))
    emulator.reset()
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=1))
    check(emulator, run(client, reader, state=None))


def test_pyarrow_dates(emulator: PersonalizeEmulator, client: Any) -> None:
    pa = pytest.importorskip("pyarrow")
    table = pa.table({"user_id": ["a"], "d": [dt.date(2024, 1, 2)]})
    Sync(client, match_on="user_id", mapping={"d": "d"}).run(table)
    assert emulator.user_attributes("a") == {"d": "2024-01-02"}
