"""One documented policy per value type, the same in the typed path (``Field(type=...)``), the
untyped path and ``users.set_attributes``; malformed cells make a row invalid, never a crash."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

import pytest

from contentstack_personalize import ConfigurationError, Field, ValidationError
from contentstack_personalize.sync import Sync
from contentstack_personalize.testing import PersonalizeEmulator
from tests.sync.conftest import patches

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")


class Plan(str, enum.Enum):
    GOLD = "gold"


class Tier(enum.IntEnum):
    TOP = 3


class Color(enum.Enum):
    RED = "red"


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr is broken")

    def __str__(self) -> str:
        raise RuntimeError("str is broken")


def run(client: Any, rows: list[dict[str, Any]], mapping: Any) -> Any:
    sync = Sync(client, match_on="user_id", mapping=mapping, raise_on_abort=False)
    return sync.run(rows)


def reasons(result: Any) -> dict[str, str]:
    return {str(i.uid): i.reason for i in result.invalid_rows}


# -- finding 6: one bad cell never crashes a run ----------------------------------------------


def test_an_overflowing_float_cell_is_an_invalid_row_not_a_crash(
    client: Any, emulator: PersonalizeEmulator
) -> None:
    rows = [{"user_id": "a", "ltv": "1e400"}, {"user_id": "b", "ltv": "2.5"}]
    result = run(client, rows, {"ltv": Field("ltv", type=float)})
    assert result.status == "succeeded"
    assert result.added == 1 and result.invalid == 1
    assert "beyond the range of a JSON number" in reasons(result)["a"]
    assert emulator.users() == {"b": {"ltv": 2.5}}


def test_a_static_value_that_cannot_be_sent_is_a_configuration_error(client: Any) -> None:
    with pytest.raises(ConfigurationError, match="field 'ltv': value="):
        Sync(client, match_on="user_id", mapping=[Field("ltv", value="1e309", type=float)])


def test_a_value_whose_repr_raises_is_an_invalid_row(
    client: Any, emulator: PersonalizeEmulator
) -> None:
    rows = [{"user_id": "a", "plan": BadRepr()}, {"user_id": "b", "plan": "gold"}]
    for mapping in ({"plan": Field("plan", type=str)}, {"plan": "plan"}):
        emulator.reset()
        result = run(client, rows, mapping)
        assert result.invalid == 1 and result.added == 1, mapping
        assert "BadRepr" in reasons(result)["a"]  # named without calling its repr()


def test_non_ascii_digits_are_not_read_as_numbers(client: Any) -> None:
    rows = [{"user_id": "a", "n": "\u0661\u0662\u0663"}, {"user_id": "b", "n": "\uff11\uff12"}]
    result = run(client, rows, {"n": Field("n", type=int)})
    assert result.invalid == 2
    assert all("only ASCII digits" in r for r in reasons(result).values())


# -- finding 7: str enums are sent as their value ---------------------------------------------


def test_enum_members_are_sent_as_their_value_also_as_uids(
    client: Any, emulator: PersonalizeEmulator
) -> None:
    rows = [
        {"user_id": Plan.GOLD, "plan": Plan.GOLD, "tier": Tier.TOP, "color": Color.RED},
    ]
    result = run(client, rows, {"plan": "plan", "tier": "tier", "color": "color"})
    assert result.added == 1
    assert emulator.users() == {"gold": {"plan": "gold", "tier": 3, "color": "red"}}
    typed = run(client, [{"user_id": "x", "plan": Plan.GOLD}], {"plan": Field("plan", type=str)})
    assert typed.added == 1 and emulator.users()["x"] == {"plan": "gold"}


# -- finding 8: numbers a JSON/JS backend cannot hold -----------------------------------------

UNSAFE = [2**53, -(2**53), 2**70, np.int64(2**63 - 1), Decimal("1e400"), Decimal(2**60)]


@pytest.mark.parametrize("value", UNSAFE, ids=repr)
@pytest.mark.parametrize("typed", [False, True], ids=["untyped", "typed"])
def test_integers_beyond_2_53_are_refused_in_every_path(
    client: Any, emulator: PersonalizeEmulator, value: Any, typed: bool
) -> None:
    mapping = {"n": Field("n", type=int)} if typed else {"n": "n"}
    result = run(client, [{"user_id": "a", "n": value}], mapping)
    assert result.invalid == 1 and not emulator.users()
    assert "2**53-1" in reasons(result)["a"]
    with pytest.raises(ValidationError, match=r"n: .*2\*\*53-1"):
        client.users.set_attributes("a", {"n": value})


def test_the_largest_safe_integer_is_sent_exactly(
    client: Any, emulator: PersonalizeEmulator
) -> None:
    result = run(client, [{"user_id": "a", "n": 2**53 - 1}], {"n": "n"})
    assert result.added == 1 and patches(emulator)[0][1] == {"n": 2**53 - 1}


def test_float32_is_sent_as_the_value_the_dataframe_shows(
    client: Any, emulator: PersonalizeEmulator
) -> None:
    frame = pd.DataFrame({"user_id": ["a"], "score": np.array([0.1], dtype=np.float32)})
    result = Sync(client, match_on="user_id", mapping={"score": "score"}).run(frame)
    assert result.added == 1 and patches(emulator)[0][1] == {"score": 0.1}
    client.users.set_attributes("b", {"score": np.float32(0.1)})
    assert emulator.users()["b"] == {"score": 0.1}
    pl = pytest.importorskip("polars")
    emulator.reset()
    polars_frame = pl.DataFrame({"user_id": ["c"], "score": pl.Series([0.1], dtype=pl.Float32)})
    Sync(client, match_on="user_id", mapping={"score": "score"}).run(polars_frame)
    assert emulator.users()["c"] == {"score": 0.1}


@pytest.mark.parametrize(
    "value", [dt.timedelta(seconds=5), np.timedelta64(5, "ns"), pd.Timedelta(seconds=5)], ids=repr
)
def test_durations_are_refused_with_advice(client: Any, value: Any) -> None:
    result = run(client, [{"user_id": "a", "d": value}], {"d": "d"})
    assert result.invalid == 1 and "total_seconds" in reasons(result)["a"]
    with pytest.raises(ValidationError, match="duration"):
        client.users.set_attributes("a", {"d": value})


def test_set_attributes_converts_like_a_sync(client: Any, emulator: PersonalizeEmulator) -> None:
    client.users.set_attributes(
        "a",
        {
            "tags": {"b", "a"},
            "raw": b"text",
            "when": dt.date(2026, 1, 2),
            "ltv": Decimal("12.5"),
            "plan": Plan.GOLD,
            "n": np.int64(7),
        },
    )
    assert emulator.users()["a"] == {
        "tags": ["a", "b"],
        "raw": "text",
        "when": "2026-01-02",
        "ltv": 12.5,
        "plan": "gold",
        "n": 7,
    }


def test_messages_use_the_right_article(client: Any) -> None:
    result = run(client, [{"user_id": "a", "x": object()}], {"x": "x"})
    assert "an object cannot be sent as JSON" in reasons(result)["a"]


def test_declared_text_takes_any_integer_and_numpy_scalars(
    client: Any, emulator: PersonalizeEmulator
) -> None:
    rows = [
        {"user_id": "a", "n": 2**60},
        {"user_id": "b", "n": np.int64(5)},
        {"user_id": "c", "n": np.float32(0.5)},
        {"user_id": "d", "n": np.True_},
    ]
    result = run(client, rows, {"n": Field("n", type=str)})
    assert result.added == 4, reasons(result)
    assert emulator.users() == {
        "a": {"n": str(2**60)},  # the advice for IDs past 2**53 works
        "b": {"n": "5"},
        "c": {"n": "0.5"},
        "d": {"n": "true"},
    }


def test_a_float32_array_is_sent_as_shown(client: Any, emulator: PersonalizeEmulator) -> None:
    result = run(
        client, [{"user_id": "a", "v": np.array([0.1, 0.2], dtype=np.float32)}], {"v": "v"}
    )
    assert result.added == 1 and emulator.users()["a"] == {"v": [0.1, 0.2]}


@pytest.mark.parametrize(
    ("attributes", "message"),
    [({"o": {1: "a"}}, "keys must be strings"), ({"s": {float("nan"), 1.0}}, "not JSON")],
)
def test_set_attributes_refuses_what_a_sync_refuses(
    client: Any, emulator: PersonalizeEmulator, attributes: Any, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        client.users.set_attributes("a", attributes)
    assert not emulator.users()
