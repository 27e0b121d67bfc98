"""Type safety of a sync's columns: what each mapped attribute is expected to hold (from the
declared field type and from the conditions of the audience rules that use it), what each column
actually holds, and what to do about a mismatch (warn, coerce when lossless, or reject the row).

Personalize attributes carry no data type; the condition an audience rule applies to an
attribute is the only place one shows (``NUMBER_GREATER_THAN`` wants numbers, ``IS_TRUE``
booleans, ``BEFORE_TIME`` ISO 8601 date-times, ``STRING_EQUALS`` text). A column that feeds such an
attribute values of another type silently never matches; this module catches that before sending.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import attrs

from ._fields import CompiledField, InvalidCell

__all__ = ["TypeCheck", "TypeChecker", "TypeIssue", "expectations_from_audiences"]

TypeCheck = Literal["warn", "coerce", "reject", "off"]

#: JSON kinds by the first character of a canonical JSON text.
_KIND_BY_FIRST = {
    '"': "string",
    "t": "boolean",
    "f": "boolean",
    "[": "list",
    "{": "object",
    "n": "null",
}

_MAX_EXAMPLES = 3
#: Characters of one example value (its repr) shown in a warning; longer ones are cut.
_MAX_EXAMPLE_CHARS = 40
#: Characters of the "because" part of a warning (audiences using the attribute) shown.
_MAX_BECAUSE_CHARS = 200


def _example(value: Any, row: int) -> str:
    """One example of a warning, ``repr(value) (row N)``, cut to a readable length: a column of
    long texts or JSON documents must not turn one warning line into kilobytes.

    Example: ``_example("x" * 400, 7)`` -> ``'xx…' (400 characters, row 7)``, the text cut to
    32 characters.
    """
    text = repr(value)
    if len(text) <= _MAX_EXAMPLE_CHARS:
        return f"{text} (row {row})"
    if isinstance(value, str):
        cut = repr(value[: _MAX_EXAMPLE_CHARS - 8])
        return f"{cut[:-1]}\u2026{cut[-1]} ({len(value):,} characters, row {row})"
    size = ""
    if isinstance(value, (list, dict)):
        unit = "item" if isinstance(value, list) else "key"
        size = f"{len(value):,} {unit}{'' if len(value) == 1 else 's'}, "
    return f"{text[: _MAX_EXAMPLE_CHARS - 1]}\u2026 ({size}row {row})"


def _reasons(because: str) -> str:
    """The first two reasons of ``because`` ("audience 'a' compares it as number; ..."), then
    how many more, cut to a readable length."""
    parts = because.split("; ")
    if len(parts) > 2:
        because = "; ".join(parts[:2]) + f"; and {len(parts) - 2} more"
    if len(because) > _MAX_BECAUSE_CHARS:
        because = because[: _MAX_BECAUSE_CHARS - 1] + "\u2026"
    return because


def json_kind(canonical: str) -> str:
    """``"string"``, ``"number"``, ``"boolean"``, ``"list"``, ``"object"`` or ``"null"``."""
    return _KIND_BY_FIRST.get(canonical[0], "number")


@attrs.frozen(kw_only=True)
class TypeIssue:
    """A column whose values do not agree with what its attribute is used as, or with each
    other.

    - ``problem``: ``"mismatch"`` (values of a kind the attribute's audience rules or declared
      type do not expect) or ``"mixed"`` (the column holds several kinds, e.g. 10 and "10").
    - ``expected``: the kinds expected (``{"number"}``), and ``because``: where that comes from
      (the declared type, or the audiences and conditions that use the attribute).
    - ``found``: count of values per kind; ``examples``: ``(row, value)`` pairs.
    - ``action``: what the run did: ``"warned"`` (sent as is), ``"coerced"``, ``"rejected"``.
    """

    column: str
    attribute: str
    problem: Literal["mismatch", "mixed"]
    expected: tuple[str, ...]
    because: str
    found: dict[str, int]
    examples: tuple[tuple[int, Any], ...]
    action: str
    count: int

    def describe(self) -> str:
        """One line for reports and logs."""
        shown = ", ".join(_example(value, row) for row, value in self.examples)
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.found.items()))
        if self.problem == "mixed":
            return (
                f"column {self.column!r} -> {self.attribute!r} mixes value types ({kinds}); "
                f"examples: {shown}"
            )
        return (
            f"column {self.column!r} -> {self.attribute!r}: {self.count} value(s) are not "
            f"{' or '.join(self.expected)} ({_reasons(self.because)}); "
            f"{self.action}; examples: {shown}"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return attrs.asdict(self)


def expectations_from_audiences(
    attributes: Iterable[Any], audiences: Iterable[Any]
) -> dict[str, tuple[set[str], list[str]]]:
    """``{attribute key: (expected kinds, [reasons])}`` from the audiences' rule conditions.

    ``attributes`` are :class:`~contentstack_personalize.models.Attribute` objects (for the uid
    to key mapping); ``audiences`` are :class:`~contentstack_personalize.models.Audience`.
    Conditions that accept anything (``HAS_ANY_VALUE``, ``JSON_MATCH``) add no expectation.
    """
    key_by_uid = {a.uid: a.key for a in attributes}
    out: dict[str, tuple[set[str], list[str]]] = {}
    for audience in audiences:
        definition = getattr(audience, "definition", None)
        kinds_of = getattr(definition, "expected_value_kinds", None)
        if kinds_of is None:
            continue
        for uid, kinds in kinds_of().items():
            key = key_by_uid.get(uid)
            useful = {k for k in kinds if k in ("string", "number", "boolean", "time")}
            if key is None or not useful:
                continue
            expected, reasons = out.setdefault(key, (set(), []))
            expected.update(useful)
            reasons.append(f"audience {audience.name!r} compares it as {'/'.join(sorted(useful))}")
    return out


_DECLARED_KIND = {
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    dt.date: "string",
    dt.datetime: "time",
    list: "list",
}


def _is_time(text: str) -> bool:
    candidate = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        dt.datetime.fromisoformat(candidate)
    except ValueError:
        return False
    return True


def _coerce(canonical: str, kind: str, target: str) -> str | None:
    """A lossless conversion of ``canonical`` (of ``kind``) to ``target``, or ``None``."""
    value = json.loads(canonical)
    if target == "number" and kind == "string":
        text = value.strip()
        try:
            number = Decimal(text)
        except InvalidOperation:
            return None
        if not number.is_finite() or number.adjusted() > 4000:
            return None
        if number == number.to_integral_value() and "." not in text and "e" not in text.lower():
            return str(int(number))
        as_float = float(number)
        return repr(as_float) if Decimal(repr(as_float)) == number.normalize() else None
    if target == "boolean" and kind == "string":
        lowered = str(value).strip().lower()
        return lowered if lowered in ("true", "false") else None
    if target == "boolean" and kind == "number" and value in (0, 1):
        return "true" if value == 1 else "false"
    if target == "string" and kind in ("number", "boolean"):
        return json.dumps(canonical)
    if target == "time" and kind == "string":
        return canonical if _is_time(value) else None
    return None


class _ColumnStats:
    __slots__ = ("examples", "kinds", "mismatch_examples", "mismatches")

    def __init__(self) -> None:
        self.kinds: dict[str, int] = {}
        self.examples: dict[str, list[tuple[int, Any]]] = {}
        self.mismatches = 0
        self.mismatch_examples: list[tuple[int, Any]] = []


class TypeChecker:
    """Checks the canonical JSON of each mapped cell, row by row, and summarises the columns.

    ``expectations`` maps attribute key -> (expected kinds, reasons); declared field types add
    their own. With ``mode="off"`` nothing is checked.
    """

    def __init__(
        self,
        fields: Sequence[CompiledField],
        expectations: Mapping[str, tuple[set[str], list[str]]],
        mode: TypeCheck,
    ) -> None:
        self.mode = mode
        self._stats: dict[str, _ColumnStats] = {f.key: _ColumnStats() for f in fields}
        self._labels = {f.key: f.column or f.key for f in fields}
        self._expected: dict[str, tuple[frozenset[str], str]] = {}
        for f in fields:
            kinds: set[str] = set()
            reasons: list[str] = []
            if f.key in expectations:
                audience_kinds, audience_reasons = expectations[f.key]
                kinds |= audience_kinds
                reasons += audience_reasons
            declared = _DECLARED_KIND.get(f.declared) if f.declared is not None else None
            if declared is not None and declared != "list":
                if (
                    kinds
                    and declared not in kinds
                    and not (declared == "string" and "time" in kinds)
                ):
                    reasons.append(f"but the field is declared {f.declared.__name__}")  # type: ignore[union-attr]
                elif not kinds:
                    kinds = {declared}
                    reasons.append(f"the field is declared {f.declared.__name__}")  # type: ignore[union-attr]
            if kinds:
                self._expected[f.key] = (frozenset(kinds), "; ".join(reasons))
        self.active = mode != "off"

    def check(self, row: int, key: str, canonical: str) -> str:
        """Record ``canonical`` for ``key``; return it (or its coercion) or raise InvalidCell."""
        kind = _KIND_BY_FIRST.get(canonical[0], "number")
        if kind == "null":
            return canonical
        kinds_seen = self._stats[key].kinds
        seen = kinds_seen.get(kind, 0) + 1
        kinds_seen[kind] = seen
        if seen <= _MAX_EXAMPLES:
            self._stats[key].examples.setdefault(kind, []).append((row, json.loads(canonical)))
        expected = self._expected.get(key)
        if expected is None:
            return canonical
        kinds, because = expected
        if kind in kinds:
            return canonical
        if kind == "string" and "time" in kinds and _is_time(json.loads(canonical)):
            return canonical
        stats = self._stats[key]
        stats.mismatches += 1
        if len(stats.mismatch_examples) < _MAX_EXAMPLES:
            stats.mismatch_examples.append((row, json.loads(canonical)))
        if self.mode == "coerce":
            for target in sorted(kinds):
                converted = _coerce(canonical, kind, target)
                if converted is not None:
                    return converted
            raise InvalidCell(
                self._labels[key],
                f"{json.loads(canonical)!r} is not {' or '.join(sorted(kinds))} and cannot be "
                f"converted without loss ({because})",
            )
        if self.mode == "reject":
            raise InvalidCell(
                self._labels[key],
                f"{json.loads(canonical)!r} is not {' or '.join(sorted(kinds))} ({because})",
            )
        return canonical

    def issues(self) -> list[TypeIssue]:
        """Mismatches and mixed columns found so far."""
        action = {
            "warn": "sent as is",
            "coerce": "coerced where lossless, else rejected",
            "reject": "rows rejected",
            "off": "not checked",
        }[self.mode]
        out: list[TypeIssue] = []
        for key, stats in self._stats.items():
            expected = self._expected.get(key)
            if stats.mismatches and expected is not None:
                out.append(
                    TypeIssue(
                        column=self._labels[key],
                        attribute=key,
                        problem="mismatch",
                        expected=tuple(sorted(expected[0])),
                        because=expected[1],
                        found=dict(stats.kinds),
                        examples=tuple(stats.mismatch_examples),
                        action=action,
                        count=stats.mismatches,
                    )
                )
            scalar_kinds = [k for k in stats.kinds if k in ("string", "number", "boolean")]
            if len(scalar_kinds) > 1:
                examples = tuple(ex for k in scalar_kinds for ex in stats.examples[k][:2])
                out.append(
                    TypeIssue(
                        column=self._labels[key],
                        attribute=key,
                        problem="mixed",
                        expected=tuple(sorted(expected[0])) if expected else (),
                        because=expected[1] if expected else "",
                        found=dict(stats.kinds),
                        examples=examples,
                        action="reported",
                        count=sum(stats.kinds[k] for k in scalar_kinds),
                    )
                )
        return out
