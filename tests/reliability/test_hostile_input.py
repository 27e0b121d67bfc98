"""Hostile and messy input over the full range of what a source can hold: any Unicode text (lone
surrogates, controls, RTL, NUL, huge), integers far beyond 2**53, every float (NaN, infinities,
-0.0, subnormals), every Decimal (NaN, sNaN, huge and tiny exponents), dates, datetimes and
times with and without a zone, durations, bytes, nested lists, tuples and dicts, enums, numpy
and pandas scalars (when installed), objects whose ``__repr__``, ``__str__``, ``__eq__`` or
``__hash__`` raise, rows that are not mappings, and wrong mapping configurations.

What docs/sync.md, docs/concepts.md and ``contentstack_personalize._values`` promise, checked on
every example:

- nothing raises out of ``plan()`` or ``run()`` except the documented ``ConfigurationError``
  (a mapped or match column that no row has);
- every row ends in exactly one bucket (``tests._invariants.assert_accounted``), a plan counts
  what the run then does, and the emulator holds exactly the values of the rows synced;
- an invalid row carries a reason naming its column (the match column for a bad or duplicated
  UID, the bad cell's column otherwise);
- what is sent, and what is reported (``to_dict()``), round-trips through strict JSON.

The expected outcome of every row is computed here by an independent oracle written from the
documented rules, not from the engine's code. The bugs it found (an sNaN or an enum whose value
is null sent as null, a nested NaT sent as text, Decimal zero with a huge exponent refused, a
numpy array as a UID, exceptions and keys whose ``str``/``repr`` raise) have regression tests
at the end of this file.
"""

from __future__ import annotations

import datetime as dt
import enum
import importlib.util
import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from contentstack_personalize import ConfigurationError
from contentstack_personalize.sync import Field, MemoryState, Sync, SyncResult
from contentstack_personalize.testing import PersonalizeEmulator
from tests._invariants import assert_accounted
from tests.sync.conftest import make_client

np: Any = None
if importlib.util.find_spec("numpy") is not None:
    import numpy as np
pd: Any = None
if importlib.util.find_spec("pandas") is not None:
    import pandas as pd

SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# ---------------------------------------------------------------------------------------------
# Hostile objects
# ---------------------------------------------------------------------------------------------


class BrokenRepr:
    """``repr()`` and ``str()`` raise."""

    def __repr__(self) -> str:
        raise RuntimeError("broken __repr__")

    def __str__(self) -> str:
        raise RuntimeError("broken __str__")


class BrokenEq:
    """Comparing it raises (so does ``!=``, which NaN checks use); unhashable."""

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("broken __eq__")

    __hash__ = None  # type: ignore[assignment]


class BrokenHash:
    """``hash()`` raises."""

    def __hash__(self) -> int:
        raise RuntimeError("broken __hash__")


class BrokenKey:
    """Hashable (usable as a dict key), but ``repr()`` and ``str()`` raise."""

    def __hash__(self) -> int:
        return 1

    def __eq__(self, other: object) -> bool:
        return self is other

    def __repr__(self) -> str:
        raise RuntimeError("broken __repr__")

    __str__ = __repr__


class BrokenEverything(BrokenRepr, BrokenEq):
    def __bool__(self) -> bool:
        raise RuntimeError("broken __bool__")

    def __len__(self) -> int:
        raise RuntimeError("broken __len__")


class BrokenStrError(Exception):
    """An exception that cannot be printed."""

    def __str__(self) -> str:
        raise RuntimeError("broken __str__")


BROKEN_TYPES = (BrokenRepr, BrokenEq, BrokenHash, BrokenKey, BrokenEverything)


class Plan(enum.Enum):
    GOLD = "gold"
    SEVEN = 7
    HALF = 2.5
    NESTED = ("a", 1)


class Level(enum.IntEnum):
    LOW = 1
    HUGE = 2**60  # beyond 2**53: an integer JSON cannot carry exactly


class NullValued(enum.Enum):
    NONE = None
    NAN = float("nan")


ENUM_MEMBERS = [*Plan, *Level, *NullValued]


# ---------------------------------------------------------------------------------------------
# Strategies: the full input ranges
# ---------------------------------------------------------------------------------------------

ANY_CHAR = st.characters(exclude_categories=())  # every code point, lone surrogates included
TEXT = st.one_of(
    st.text(ANY_CHAR, max_size=20),
    st.text(st.characters(categories=["Cc", "Cf", "Zl", "Zp", "Zs"]), max_size=6),  # controls
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "a\x00b",
            "\x7f",
            "שלום עולם",  # RTL
            "\u202eevil\u202c",  # right-to-left override
            "😀👍🏽🇫🇷",
            "e\u0301",  # combining accent
            "\ud800",  # lone surrogates
            "\udfff",
            "line\r\nbreak",
            '"quoted"\\',
            "\ufeffbom",
            "x" * 70_000,  # huge
        ]
    ),
)
INTS = st.one_of(
    st.integers(),
    st.sampled_from([0, -1, 2**53 - 1, 2**53, -(2**53 - 1), -(2**53), 2**63 - 1, 2**64, -(2**64)]),
    # built by map: Hypothesis cannot repr() an int of more than 4300 digits in a strategy
    st.sampled_from([1023, 1024, 5000]).map(lambda e: 10**e),  # 5000: more digits than str() takes
    st.sampled_from([1024, 5000]).map(lambda e: -(10**e)),
)
FLOATS = st.one_of(
    st.floats(),  # NaN, infinities, -0.0 and subnormals included
    st.sampled_from(
        [
            math.nan,
            -math.nan,
            math.inf,
            -math.inf,
            -0.0,
            5e-324,
            2.2250738585072014e-308,
            1.7976931348623157e308,
            2.0**53,
            2.0**53 + 2,
            0.1,
        ]
    ),
)
DECIMALS = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            Decimal(text)
            for text in (
                "NaN",
                "-NaN",
                "sNaN",
                "-sNaN",
                "Infinity",
                "-Infinity",
                "-0",
                "0E+5000",
                "1E+5000",
                "1E-5000",
                "1E+999999",
                "-1E-999999",
                "0.1",
                "1.5",
                "1.10",
                "12345678901234567.5",
                "9007199254740991",
                "9007199254740992",
                "1E+15",
            )
        ]
    ),
)
OFFSETS = st.builds(
    dt.timezone,
    st.timedeltas(min_value=dt.timedelta(hours=-23, minutes=-59), max_value=dt.timedelta(hours=23)),
)
TIMEZONES = st.one_of(st.none(), st.just(dt.timezone.utc), OFFSETS)
TEMPORAL = st.one_of(
    st.dates(),
    st.datetimes(timezones=TIMEZONES),
    st.times(timezones=TIMEZONES),
    st.timedeltas(),
)
BYTES = st.one_of(
    st.binary(max_size=8),
    st.builds(bytearray, st.binary(max_size=4)),
    st.builds(memoryview, st.binary(max_size=4)),
)
BROKEN = st.sampled_from(BROKEN_TYPES).map(lambda cls: cls())


def _foreign_scalars() -> st.SearchStrategy[Any]:
    options: list[st.SearchStrategy[Any]] = []
    if np is not None:
        options += [
            st.integers(-(2**63), 2**63 - 1).map(np.int64),
            st.integers(0, 2**64 - 1).map(np.uint64),
            st.integers(-128, 127).map(np.int8),
            st.floats().map(np.float64),
            st.floats(width=32).map(np.float32),
            st.floats(width=16).map(np.float16),
            st.booleans().map(np.bool_),
            st.text(st.characters(exclude_categories=["Cs"]), max_size=5).map(np.str_),
            st.dates().map(lambda d: np.datetime64(d, "D")),
            st.datetimes().map(lambda d: np.datetime64(d, "us")),
            st.just(np.datetime64("NaT")),
            st.integers(-(10**6), 10**6).map(lambda n: np.timedelta64(n, "s")),
            st.just(np.timedelta64("NaT")),
            st.lists(st.integers(-(2**40), 2**40), max_size=3).map(
                lambda xs: np.array(xs, dtype=np.int64)
            ),
        ]
    if pd is not None:
        options += [
            st.sampled_from([pd.NA, pd.NaT]),
            st.datetimes(
                min_value=dt.datetime(1700, 1, 1),
                max_value=dt.datetime(2200, 1, 1),
                timezones=st.sampled_from([None, dt.timezone.utc]),
            ).map(pd.Timestamp),
            st.integers(-(10**6), 10**6).map(lambda n: pd.Timedelta(seconds=n)),
        ]
    return st.one_of(options) if options else st.nothing()


FOREIGN = _foreign_scalars()
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    INTS,
    FLOATS,
    DECIMALS,
    TEXT,
    BYTES,
    TEMPORAL,
    st.sampled_from(ENUM_MEMBERS),
    BROKEN,
    FOREIGN,
)
DICT_KEYS = st.one_of(TEXT, st.integers(0, 3), st.none(), st.builds(BrokenKey))


def _nest(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(DICT_KEYS, inner, max_size=3),
    )


VALUES = st.recursive(SCALARS, _nest, max_leaves=6)

UIDS = st.one_of(
    st.sampled_from(["u1", "u2", "u3", "u 4", "42", " u5", "u6 ", "ü7", "x" * 1025, "y" * 1024]),
    st.integers(min_value=-5, max_value=50),
    st.sampled_from([42.0, Decimal(42), Decimal("42.0"), Plan.SEVEN, b"42"]),  # all "42"
    SCALARS,
    st.lists(st.integers(), max_size=2),
)
COLUMNS = ("plan", "score", "blob")
NOT_MAPPINGS = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=3),
    st.lists(st.integers(), max_size=2),
    st.tuples(st.text(max_size=2), st.integers()),
    BROKEN,
)


# Plain values that sync, mixed in so that examples also sync many rows, not only refuse them.
PLAIN_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53) + 1, 2**53 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=10),
    st.lists(st.text(max_size=3), max_size=3),
)
PLAIN_UIDS = st.integers(0, 30).map(lambda n: f"user-{n}")


@st.composite
def rows_strategy(draw: st.DrawFn) -> list[Any]:
    """Rows of a plain iterable: any first row, sparse or not, with rows that are not
    mappings, missing match columns, and column names that are not text. ``hostile`` tenths of
    the UIDs and cells come from the full ranges, the others are plain values that sync."""
    sparse = draw(st.booleans())  # columns often absent (a missing key is a null)
    hostile = draw(st.integers(1, 10))

    def pick(full: st.SearchStrategy[Any], plain: st.SearchStrategy[Any]) -> Any:
        return draw(full if draw(st.integers(1, 10)) <= hostile else plain)

    out: list[Any] = []
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.integers(0, 19))
        if kind == 0:  # not a mapping at all
            out.append(draw(NOT_MAPPINGS))
            continue
        row: dict[Any, Any] = {}
        if kind != 1:  # kind 1: the match column is missing
            row["user_id"] = pick(UIDS, PLAIN_UIDS)
        for column in COLUMNS:
            if not sparse or draw(st.integers(0, 3)):
                row[column] = pick(VALUES, PLAIN_VALUES)
        if draw(st.booleans()):
            row[draw(st.integers())] = "a non-text column name"
        out.append(row)
    return out


# ---------------------------------------------------------------------------------------------
# The oracle: the documented rules, written independently of the engine
# ---------------------------------------------------------------------------------------------


class Invalid(Exception):
    pass


NULL: Any = object()  # "no value": the attribute is left out of the request
MAX_SAFE = 2**53 - 1  # the largest integer a JSON number carries exactly


def _foreign(value: Any) -> bool:
    return type(value).__module__.split(".")[0] in ("numpy", "pandas")


def oracle_uid(value: Any) -> str:
    """The UID text of a match value (docs/sync.md, "match_on"), or raise ``Invalid``."""
    if isinstance(value, enum.Enum) and not isinstance(value, int):
        return oracle_uid(value.value)
    if _foreign(value) and not isinstance(value, (str, float)):
        if np is not None and isinstance(value, np.generic):
            return oracle_uid(value.item())
        raise Invalid("uid")
    if value is None or isinstance(value, bool):
        raise Invalid("uid")
    if isinstance(value, int):
        if abs(value) >= 10**1024:  # more than 1024 characters
            raise Invalid("uid")
        text = str(int(value))
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise Invalid("uid")
        if abs(value) > 2**53:  # may have been rounded: refused, never guessed
            raise Invalid("uid")
        text = str(int(value))
    elif isinstance(value, Decimal):
        if not value.is_finite() or value != value.to_integral_value():
            raise Invalid("uid")
        if abs(value) >= 10**1024:
            raise Invalid("uid")
        text = str(int(value))
    elif isinstance(value, (bytes, bytearray)):
        try:
            text = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise Invalid("uid") from None
    elif isinstance(value, str):
        text = str.__str__(value)
    else:
        raise Invalid("uid")
    # Printable ASCII, no surrounding spaces, 1..1024 characters.
    if not 1 <= len(text) <= 1024 or text[0] == " " or text[-1] == " ":
        raise Invalid("uid")
    if any(not 0x20 <= ord(ch) <= 0x7E for ch in text):
        raise Invalid("uid")
    return text


def _is_null(value: Any) -> bool:
    """The documented nulls: None, NaN (float, Decimal, numpy), NaT, pandas NA; and an enum
    member whose value is one of them (a member is sent as its value)."""
    if value is None:
        return True
    if isinstance(value, enum.Enum):
        return _is_null(value.value)
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, Decimal):
        return value.is_nan()
    if pd is not None and (value is pd.NA or value is pd.NaT):
        return True
    if np is not None and isinstance(value, (np.datetime64, np.timedelta64)):
        return bool(np.isnat(value))
    if np is not None and isinstance(value, np.floating):
        return bool(np.isnan(value))
    return False


def _number(value: int | float) -> Any:
    if isinstance(value, int):
        if abs(value) > MAX_SAFE:
            raise Invalid("unsafe integer")
        return int(value)
    if math.isinf(value):
        raise Invalid("inf")
    return float(value)


def _text(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid("surrogate") from None
    return str.__str__(value)


def oracle_value(value: Any, depth: int = 0) -> Any:
    """The JSON value the edge must receive (``None`` for a null), or raise ``Invalid``."""
    if depth > 32:
        raise Invalid("too deep")
    if _is_null(value):
        return None
    if isinstance(value, enum.Enum):  # its value
        return oracle_value(value.value, depth + 1)
    if isinstance(value, bool) or (np is not None and isinstance(value, np.bool_)):
        return bool(value)
    # numpy's timedelta64 is an integer type: a duration first
    if isinstance(value, dt.timedelta) or (np is not None and isinstance(value, np.timedelta64)):
        raise Invalid("duration")
    if isinstance(value, str):
        return _text(value)
    if np is not None and isinstance(value, (np.float32, np.float16)):
        # the shortest decimal that reads back as the same value, as a DataFrame shows it
        return _number(float(np.format_float_positional(value, unique=True)))
    if np is not None and isinstance(value, np.datetime64):
        return str(np.datetime_as_string(value))
    if np is not None and isinstance(value, (np.integer, np.floating)):
        return _number(value.item())
    if np is not None and isinstance(value, np.ndarray):
        return [oracle_value(item, depth + 1) for item in value.tolist()]
    if isinstance(value, (int, float)):
        return _number(value)
    if isinstance(value, Decimal):
        if value.is_infinite():
            raise Invalid("inf")
        if value == value.to_integral_value():
            if abs(value) > MAX_SAFE:
                raise Invalid("unsafe integer")
            return int(value)
        as_float = float(value)
        if Decimal(repr(as_float)) != value:  # a float would lose digits
            raise Invalid("inexact")
        return as_float
    if pd is not None and isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, (dt.date, dt.time)):  # datetimes too
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise Invalid("bytes") from None
    if isinstance(value, (list, tuple)):
        return [oracle_value(v, depth + 1) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise Invalid("key")
            out[_text(k)] = oracle_value(v, depth + 1)
        return out
    raise Invalid(type(value).__name__)


def oracle_cell(value: Any) -> Any:
    """A mapped column's value: ``NULL`` (skipped: the default ``null="skip"``) or JSON."""
    if _is_null(value):
        return NULL
    return oracle_value(value)


class Expected:
    """What one run on empty state must report."""

    def __init__(self) -> None:
        self.missing: list[str] = []  # needed columns no row has: a ConfigurationError
        self.invalid: dict[int, set[str] | None] = {}  # row -> columns its reason may name
        self.chosen: dict[str, dict[str, Any]] = {}  # uid -> attributes (empty: all null)

    @property
    def sent(self) -> dict[str, dict[str, Any]]:
        return {uid: attrs for uid, attrs in self.chosen.items() if attrs}


def oracle(rows: list[Any], on_duplicate: str, mapping: Mapping[str, str]) -> Expected:
    expected = Expected()
    needed = ["user_id", *mapping]
    mappings = [row for row in rows if isinstance(row, Mapping)]
    if rows:
        expected.missing = [c for c in needed if not any(c in row for row in mappings)]
    candidates: dict[str, list[tuple[int, dict[str, Any] | None]]] = {}
    for n, row in enumerate(rows, start=1):
        if not isinstance(row, Mapping):
            expected.invalid[n] = None
            continue
        try:
            uid = oracle_uid(row.get("user_id"))
        except Invalid:
            expected.invalid[n] = {"user_id"}
            continue
        attrs: dict[str, Any] | None = {}
        bad: set[str] = set()
        for column, key in mapping.items():
            try:
                value = oracle_cell(row.get(column))
            except Invalid:
                bad.add(column)
                continue
            if value is not NULL:
                attrs[key] = value  # type: ignore[index]
        if bad:
            expected.invalid[n] = bad
            attrs = None
        candidates.setdefault(uid, []).append((n, attrs))
    for uid, seen in candidates.items():
        if len(seen) > 1:
            keep = {"reject_all": None, "first": seen[0], "last": seen[-1]}[on_duplicate]
            for entry in seen:
                if entry is not keep and entry[0] not in expected.invalid:
                    expected.invalid[entry[0]] = {"user_id"}
            if keep is None:
                continue
            seen = [keep]
        _, attrs = seen[0]
        if attrs is not None:
            expected.chosen[uid] = attrs
    return expected


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------


def _no_constants(name: str) -> Any:
    raise AssertionError(f"{name} is not JSON")


def strict_json(text: str | bytes) -> Any:
    """Parse ``text`` as RFC 8259 JSON: no NaN or Infinity, valid UTF-8."""
    return json.loads(text, parse_constant=_no_constants)


def check_sent_round_trips(emulator: PersonalizeEmulator) -> None:
    """Every body sent is strict JSON, and encodes back to the same value."""
    for request in emulator.requests:
        if request.method == "PATCH" and request.path == "/user-attributes":
            body = strict_json(request.body)
            assert isinstance(body, dict), body
            again = json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
            assert strict_json(again) == body


def check_report(result: SyncResult) -> None:
    """The report never chokes on what it reports, and its dict is strict JSON."""
    assert_accounted(result)
    for issue in result.invalid_rows:
        assert issue.kind == "invalid" and issue.reason
    for issue in result.rejected_rows:
        assert issue.kind == "rejected" and issue.status is not None and issue.code, issue
    assert result.summary()
    text = json.dumps(result.to_dict(), ensure_ascii=False, allow_nan=False)
    assert strict_json(text.encode("utf-8"))["read"] == result.read


def check_invalid_rows(result: Any, expected: Expected) -> None:
    """The invalid rows are the oracle's, each with a reason naming its column."""
    assert {i.row: i for i in result.invalid_rows}.keys() == expected.invalid.keys()
    for issue in result.invalid_rows:
        columns = expected.invalid[issue.row]
        if columns is None:  # not a mapping: no column to name
            assert issue.column is None and "not a mapping" in issue.reason, issue
            continue
        assert issue.column in columns, (issue, columns)
        described = issue.describe()
        for column in columns:
            assert repr(column) in described, (column, described)


def same_json(a: Any, b: Any) -> bool:
    """Equal as JSON values (so -0.0 == 0.0, and 1 == 1.0 as JSON numbers are)."""
    return bool(strict_json(json.dumps(a, allow_nan=False)) == b)


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------

MAPPING = {"plan": "plan", "score": "score", "blob": "blob"}


def few(n: int) -> str:
    """``n`` as an event label (Hypothesis statistics: how many examples sync rows)."""
    return str(n) if n < 3 else "3+"


@SETTINGS
@given(rows=rows_strategy(), on_duplicate=st.sampled_from(["reject_all", "first", "last"]))
def test_every_row_ends_in_exactly_one_bucket(rows: list[Any], on_duplicate: str) -> None:
    expected = oracle(rows, on_duplicate, MAPPING)
    emulator = PersonalizeEmulator(seed=0)
    with make_client(emulator) as client:
        sync = Sync(
            client,
            match_on="user_id",
            mapping=MAPPING,
            state=MemoryState(),
            on_duplicate=on_duplicate,  # type: ignore[arg-type]
            concurrency=4,
        )
        event("a column no row has" if expected.missing else "ran")
        event(f"rows synced: {few(len(expected.sent))}")
        event(f"rows invalid: {few(len(expected.invalid))}")
        if expected.missing:  # the one documented error: a column no row has
            for attempt in (sync.plan, sync.run):
                with pytest.raises(ConfigurationError, match="not found") as info:
                    attempt(rows)
                assert all(repr(column) in str(info.value) for column in expected.missing)
            assert emulator.users() == {}
            return
        sent = expected.sent
        with sync.plan(rows) as plan:
            assert_accounted(plan, read=len(rows))
            check_invalid_rows(plan, expected)
            assert (plan.added, plan.changed, plan.retried) == (len(sent), 0, 0)
            assert plan.unchanged == len(expected.chosen) - len(sent)
        result = sync.run(rows)
    check_report(result)
    assert_accounted(result, read=len(rows))
    check_invalid_rows(result, expected)
    assert result.status == "succeeded", result.summary()
    assert result.added == len(sent) and result.changed == 0
    assert result.unchanged == len(expected.chosen) - len(sent)  # all-null rows cost nothing
    assert result.rejected == result.not_sent == result.retried == 0
    check_sent_round_trips(emulator)
    assert same_json(sent, emulator.users())


@SETTINGS
@given(rows=rows_strategy())
def test_api_rejections_carry_the_apis_answer(rows: list[Any]) -> None:
    """With an emulator that refuses the unknown key ``blob``, rows sending it are rejected with
    the API's status and code; the others are synced; nothing raises."""
    expected = oracle(rows, "reject_all", MAPPING)
    assume(not expected.missing)
    emulator = PersonalizeEmulator(seed=0, unknown_attribute="reject")
    emulator.add_attribute("plan")
    emulator.add_attribute("score")
    with make_client(emulator) as client:
        sync = Sync(
            client,
            match_on="user_id",
            mapping=MAPPING,
            state=MemoryState(),
            check_attributes=False,
            raise_on_abort=False,
            concurrency=4,
        )
        result = sync.run(rows)
        check_report(result)
        assert_accounted(result, read=len(rows))
        check_invalid_rows(result, expected)
        refused = {uid for uid, attrs in expected.chosen.items() if "blob" in attrs}
        assert {i.uid for i in result.rejected_rows} == refused
        for issue in result.rejected_rows:
            assert issue.status == 400 and "INVALID_ATTRIBUTE" in (issue.code or "")
        check_sent_round_trips(emulator)
        synced = {uid: a for uid, a in expected.sent.items() if uid not in refused}
        assert same_json(synced, emulator.users())
        # The rejected users are retried on the next run, even though nothing changed.
        if refused:
            again = sync.run(rows)
            assert_accounted(again, read=len(rows))
            assert again.rejected == len(refused) and again.retried == len(refused)


# Wrong configurations: a ConfigurationError at construction (or a usable sync), never another
# exception; and a sync that constructs never raises an unexpected exception when it runs.
def _raises(value: Any) -> Any:
    raise ValueError(f"cannot use {value!r}")


FIELD_KW = st.fixed_dictionaries(
    {},
    optional={
        "column": st.one_of(st.none(), st.text(max_size=4), st.integers()),
        "value": SCALARS,
        "default": SCALARS,
        "type": st.one_of(
            st.none(),
            st.sampled_from(
                [
                    str,
                    int,
                    float,
                    bool,
                    list,
                    dict,
                    dt.date,
                    dt.datetime,
                    "number",
                    "date",
                    "list[str]",
                    "nope",
                    3,
                    list[str],
                    object,
                ]
            ),
        ),
        "null": st.sampled_from(["skip", "send", "drop", None, 1]),
        "coerce": st.one_of(st.booleans(), st.none(), st.integers()),
        "transform": st.sampled_from(
            [None, str, int, float, len, _raises, lambda v: BrokenRepr(), "notcallable"]
        ),
        "compute": st.sampled_from(
            [None, lambda r: r.get("plan"), lambda r: r["missing"], lambda r: BrokenRepr()]
        ),
    },
)
SPEC = st.one_of(
    st.text(max_size=6),
    st.integers(),
    st.none(),
    BROKEN,
    st.builds(lambda key, kw: Field(key, **kw), st.one_of(st.text(max_size=6), INTS), FIELD_KW),
)
MAPPINGS = st.one_of(
    st.dictionaries(st.one_of(st.text(max_size=6), st.integers(), st.none()), SPEC, max_size=4),
    st.lists(SPEC, max_size=3),
    st.lists(SPEC, max_size=3).map(tuple),
    st.text(max_size=3),
    st.none(),
    st.integers(),
    st.binary(max_size=3),
    BROKEN,
)


@SETTINGS
@given(
    data=st.data(),
    match_on=st.one_of(st.text(max_size=5), st.none(), st.integers(), BROKEN),
    rows=rows_strategy(),
)
def test_wrong_mappings_fail_with_a_configuration_error_or_run_cleanly(
    data: st.DataObject, match_on: Any, rows: list[Any]
) -> None:
    try:
        mapping = data.draw(MAPPINGS)
    except ConfigurationError as exc:  # Field(...) itself refused its arguments
        assert str(exc)
        return
    emulator = PersonalizeEmulator(seed=0)
    with make_client(emulator) as client:
        try:
            sync = Sync(client, match_on=match_on, mapping=mapping, state=MemoryState())
        except ConfigurationError as exc:
            assert str(exc)  # says what is wrong
            return
        try:
            with sync.plan(rows) as plan:
                assert_accounted(plan, read=len(rows))
            result = sync.run(rows)
        except ConfigurationError as exc:  # a mapped column the rows do not have
            assert "not found" in str(exc)
            assert emulator.users() == {}
            return
    check_report(result)
    assert_accounted(result, read=len(rows))
    check_sent_round_trips(emulator)
    for issue in result.invalid_rows:
        assert issue.column is not None or "not a mapping" in issue.reason, issue


# ---------------------------------------------------------------------------------------------
# Specific hostile values
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["\x00", "שלום", "\u202eevil", "😀👍🏽", "x" * 200_000, "a\x00b\x01c", {"k": ["\x00", "😀"]}],
    ids=["nul", "rtl", "override", "emoji", "huge", "controls", "nested"],
)
def test_unicode_and_huge_values_round_trip_exactly(value: Any) -> None:
    emulator = PersonalizeEmulator(seed=0)
    with make_client(emulator) as client:
        result = Sync(client, match_on="id", mapping={"v": "v"}).run([{"id": "u1", "v": value}])
    assert_accounted(result, read=1)
    check_sent_round_trips(emulator)
    assert result.added == 1
    assert emulator.user_attributes("u1") == {"v": value}


@pytest.mark.parametrize(
    "row",
    [
        {"id": "u1", "v": "\ud800"},
        {"id": "u1", "v": ["ok", "\udfff"]},
        {"id": "u1", "v": float("inf")},
        {"id": "u1", "v": Decimal("Infinity")},
        {"id": "u1", "v": b"\xff\xfe"},
        {"id": "u1", "v": object()},
        {"id": "u\ud800", "v": 1},
        {"id": "u1\n", "v": 1},
    ],
    ids=[
        "surrogate",
        "nested-surrogate",
        "inf",
        "decimal-inf",
        "bad-bytes",
        "object",
        "uid-sur",
        "uid-lf",
    ],
)
def test_unsendable_values_make_the_row_invalid_with_a_reason(row: dict[str, Any]) -> None:
    emulator = PersonalizeEmulator(seed=0)
    with make_client(emulator) as client:
        result = Sync(client, match_on="id", mapping={"v": "v"}).run([row, {"id": "ok", "v": 1}])
    assert_accounted(result, read=2)
    assert result.invalid == 1 and result.added == 1
    assert result.invalid_rows[0].row == 1 and result.invalid_rows[0].reason
    assert result.invalid_rows[0].column == ("v" if row["id"] == "u1" else "id")
    assert emulator.users() == {"ok": {"v": 1}}


def run_one(rows: Any) -> tuple[SyncResult, PersonalizeEmulator]:
    """One run of ``rows`` mapping column ``v``, checked with ``assert_accounted``."""
    emulator = PersonalizeEmulator(seed=0)
    with make_client(emulator) as client:
        result = Sync(client, match_on="id", mapping={"v": "v"}).run(rows)
    check_report(result)
    check_sent_round_trips(emulator)
    return result, emulator


HUGE_INT = 10**5000  # more digits than Python converts to text by default (4300)


def test_huge_integer_value_makes_the_row_invalid() -> None:
    result, emulator = run_one([{"id": "u1", "v": HUGE_INT}, {"id": "ok", "v": 1}])
    assert result.invalid == 1 and result.added == 1
    assert emulator.users() == {"ok": {"v": 1}}


def test_huge_decimal_value_makes_the_row_invalid() -> None:
    result, _ = run_one([{"id": "u1", "v": Decimal("1e5000")}, {"id": "ok", "v": 1}])
    assert result.invalid == 1 and result.added == 1


@pytest.mark.parametrize("uid", [HUGE_INT, Decimal("1e5000")], ids=["int", "decimal"])
def test_huge_integer_uid_makes_the_row_invalid(uid: Any) -> None:
    result, _ = run_one([{"id": uid, "v": 1}, {"id": "ok", "v": 1}])
    assert result.invalid == 1 and result.added == 1


def test_lone_surrogate_in_a_nested_key_makes_the_row_invalid() -> None:
    result, emulator = run_one([{"id": "u1", "v": {"a\ud800": 1}}, {"id": "ok", "v": 1}])
    assert result.invalid == 1 and result.added == 1
    assert emulator.users() == {"ok": {"v": 1}}


@pytest.mark.parametrize(
    "first", [{"id": "a"}, {"v": 1}], ids=["mapped-column-absent", "match-column-absent"]
)
def test_a_sparse_first_row_is_just_a_row(first: dict[str, Any]) -> None:
    result, emulator = run_one([first, {"id": "b", "v": 2}])
    assert result.read == 2 and result.added == 1
    assert emulator.user_attributes("b") == {"v": 2}


@pytest.mark.parametrize("rows", [[], iter(())], ids=["empty-list", "empty-iterator"])
def test_an_empty_source_is_an_empty_successful_run(rows: Any) -> None:
    result, emulator = run_one(rows)
    assert result.status == "succeeded" and result.read == 0 and result.requests == 0
    assert emulator.users() == {}


def test_a_non_mapping_row_after_the_first_is_invalid_not_fatal() -> None:
    result, emulator = run_one([{"id": "a", "v": 1}, ("b", 2), None, "c", {"id": "d", "v": 4}])
    assert result.read == 5 and result.invalid == 3 and result.added == 2
    assert {i.row for i in result.invalid_rows} == {2, 3, 4}
    assert all("not a mapping" in i.reason for i in result.invalid_rows)
    assert emulator.users() == {"a": {"v": 1}, "d": {"v": 4}}


@pytest.mark.parametrize("mapping", [None, 42], ids=["none", "int"])
def test_a_mapping_that_is_not_a_mapping_is_a_configuration_error(mapping: Any) -> None:
    emulator = PersonalizeEmulator(seed=0)
    with make_client(emulator) as client, pytest.raises(ConfigurationError, match="mapping"):
        Sync(client, match_on="id", mapping=mapping)


def test_nesting_deeper_than_32_levels_makes_the_row_invalid() -> None:
    deep: Any = "bottom"
    for _ in range(40):
        deep = [deep]
    result, emulator = run_one([{"id": "u1", "v": deep}, {"id": "ok", "v": 1}])
    assert_accounted(result, read=2)
    assert result.invalid == 1 and result.invalid_rows[0].column == "v"
    assert "32 levels" in result.invalid_rows[0].reason
    assert emulator.users() == {"ok": {"v": 1}}


@pytest.mark.parametrize("cls", BROKEN_TYPES, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("where", ["value", "nested", "uid", "row"])
def test_objects_with_broken_dunders_make_the_row_invalid(cls: type, where: str) -> None:
    bad = cls()
    row: Any = {
        "value": {"id": "u1", "v": bad},
        "nested": {"id": "u1", "v": {"k": [1, bad]}},
        "uid": {"id": bad, "v": 1},
        "row": bad,
    }[where]
    result, emulator = run_one([row, {"id": "ok", "v": 1}])
    assert_accounted(result, read=2)
    assert result.invalid == 1 and result.invalid_rows[0].row == 1
    issue = result.invalid_rows[0]
    assert issue.column == {"value": "v", "nested": "v", "uid": "id", "row": None}[where]
    assert emulator.users() == {"ok": {"v": 1}}
    json.dumps(result.to_dict(), allow_nan=False)


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        (Decimal("NaN"), None),
        (math.nan, None),
        (Decimal("sNaN"), None),
        (NullValued.NONE, None),
        (NullValued.NAN, None),
        (Plan.GOLD, "gold"),
    ],
    ids=["decimal-nan", "float-nan", "decimal-snan", "enum-none", "enum-nan", "enum-gold"],
)
def test_a_null_cell_is_skipped_and_keeps_the_old_value(value: Any, sent: Any) -> None:
    """docs/sync.md, Nulls: a null (None, NaN...) means "no value"; with the default
    ``null="skip"`` the attribute is left out, so Personalize keeps what it had."""
    emulator = PersonalizeEmulator(seed=0)
    with make_client(emulator) as client:
        sync = Sync(client, match_on="id", mapping={"v": "v"}, state=MemoryState())
        sync.run([{"id": "u1", "v": "old"}])
        result = sync.run([{"id": "u1", "v": value}])
    assert_accounted(result, read=1)
    assert result.invalid == 0
    assert emulator.user_attributes("u1") == {"v": "old" if sent is None else sent}


def test_decimal_zero_with_a_huge_exponent_is_zero() -> None:
    result, emulator = run_one([{"id": "u1", "v": Decimal("0E+5000")}])
    assert result.invalid == 0, result.invalid_rows
    assert emulator.users() == {"u1": {"v": 0}}


def _raise_broken(*_: Any) -> Any:
    raise BrokenStrError


@pytest.mark.parametrize(
    "field",
    [Field("v", column="v", transform=_raise_broken), Field("v", compute=_raise_broken)],
    ids=["transform", "compute"],
)
def test_a_transform_raising_an_unprintable_exception_makes_the_row_invalid(
    field: Field,
) -> None:
    emulator = PersonalizeEmulator(seed=0)
    with make_client(emulator) as client:
        result = Sync(client, match_on="id", mapping=[field]).run([{"id": "u1", "v": 1}])
    assert result.invalid == 1 and result.invalid_rows[0].column is not None
    assert "BrokenStrError" in result.invalid_rows[0].reason


@pytest.mark.skipif(np is None, reason="numpy is not installed")
@pytest.mark.parametrize("size", [0, 2])
def test_a_numpy_array_as_the_uid_makes_the_row_invalid(size: int) -> None:
    result, emulator = run_one([{"id": np.arange(size), "v": 1}, {"id": "ok", "v": 1}])
    assert result.invalid == 1 and result.invalid_rows[0].column == "id"
    assert emulator.users() == {"ok": {"v": 1}}


def test_an_unprintable_attribute_key_is_a_configuration_error() -> None:
    emulator = PersonalizeEmulator(seed=0)
    with make_client(emulator) as client, pytest.raises(ConfigurationError):
        Sync(client, match_on="id", mapping={"v": Field(BrokenRepr())})  # type: ignore[arg-type]


@pytest.mark.skipif(pd is None, reason="pandas is not installed")
def test_a_nested_pandas_nat_is_null() -> None:
    result, emulator = run_one([{"id": "u1", "v": [pd.NaT, 1]}])
    assert result.invalid == 0
    assert emulator.users() == {"u1": {"v": [None, 1]}}
