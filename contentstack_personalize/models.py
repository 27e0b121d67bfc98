"""The values the API returns and takes: frozen, keyword-only attrs classes built with
``from_api(data)`` and turned back into JSON with ``to_api()``.

Nothing is lost on the way through: keys this library does not model (fields the API adds
later) are kept in ``extra`` and written back by ``to_api()``, so an object read and written
back is the object that was read. Timestamps stay the API's ISO 8601 strings. Change a value
with ``attrs.evolve(obj, name="...")``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias

import attrs

from .errors import ValidationError
from .rules import RawNode, RuleCombination, parse_definition

__all__ = [
    "ATTRIBUTE_KEY_PATTERN",
    "EVENT_KEY_PATTERN",
    "Attribute",
    "Audience",
    "CustomEvent",
    "Event",
    "Experience",
    "Impression",
    "Manifest",
    "ManifestExperience",
    "Project",
    "TrackedEvent",
]

#: What an attribute key may contain (letters, digits, underscore). Checked before sending; the
#: API documents no pattern, this is the one its UI enforces and user attributes need (JSON keys
#: that are also safe identifiers in audience rules and SDKs).
ATTRIBUTE_KEY_PATTERN = re.compile(r"[A-Za-z0-9_]+")
#: The preset attributes every project has (referenced by these names in audience rules). The
#: edge sets them itself; Personalize refuses a custom attribute named like one (any case).
PRESET_ATTRIBUTE_NAMES = frozenset(
    {
        "COUNTRY",
        "REGION",
        "CITY",
        "DEVICE_TYPE",
        "OPERATING_SYSTEM",
        "BROWSER",
        "REFERRER",
        "QUERY_PARAMETER",
        "LANDING_PAGE",
        "DAY_OF_WEEK",
        "TIME_OF_DAY",
    }
)
#: What an event key may contain (letters, digits, underscore, hyphen), e.g. ``clickCTA``.
EVENT_KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]+")

_AUDIT = (
    ("created_at", "createdAt"),
    ("created_by", "createdBy"),
    ("updated_at", "updatedAt"),
    ("updated_by", "updatedBy"),
)


_AUDIT_KEYS = tuple(api for _, api in _AUDIT)


def _extra(data: Mapping[str, Any], known: Iterable[str]) -> dict[str, Any]:
    """Unmodelled keys, plus documented keys the API sent as explicit nulls (so that
    ``to_api()`` writes them back exactly as read)."""
    known = frozenset(known)
    return {k: v for k, v in data.items() if k not in known or v is None}


def _merge(known: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        known.setdefault(key, value)
    return known


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        out[key] = value


def _audit_from(data: Mapping[str, Any]) -> dict[str, Any]:
    return {attr: data.get(api) for attr, api in _AUDIT}


def _audit_to(obj: Any, out: dict[str, Any]) -> None:
    for attr, api in _AUDIT:
        _put(out, api, getattr(obj, attr))


def _require_mapping(data: object, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ValueError(f"expected a JSON object for {what}, got {type(data).__name__}")
    return data


def check_key(key: object, *, what: str = "attribute") -> str:
    """Return ``key`` if it is a valid attribute (or event) key, else raise ValidationError."""
    pattern = ATTRIBUTE_KEY_PATTERN if what == "attribute" else EVENT_KEY_PATTERN
    if not isinstance(key, str):
        raise ValidationError(
            f"{what} key must be a string, not {type(key).__name__}: {key!r}; "
            "pass the key as str; nothing was sent"
        )
    if not key:
        raise ValidationError(f"{what} key is empty; nothing was sent")
    if not pattern.fullmatch(key):
        allowed = "letters, digits and _" if what == "attribute" else "letters, digits, _ and -"
        raise ValidationError(
            f"{what} key {key!r} may only contain {allowed} (no spaces); nothing was sent"
        )
    return key


# ----------------------------------------------------------------------------- management


@attrs.frozen(kw_only=True)
class Attribute:
    """An attribute of the project's catalogue: ``CUSTOM`` (yours) or ``PRESET`` (built in).

    Attributes carry no data type; the audience rules that use one tell what it holds.

    Example::

        plan = client.attributes.create(key="plan", name="Plan")
        client.attributes.update(plan, name="Subscription plan")
    """

    uid: str
    key: str
    name: str
    description: str | None = None
    type: str = "CUSTOM"
    project: str | None = None
    created_at: str | None = None
    created_by: str | None = None
    updated_at: str | None = None
    updated_by: str | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    _KEYS = ("uid", "key", "name", "description", "__type", "project", *_AUDIT_KEYS)

    @property
    def is_custom(self) -> bool:
        """Whether this is one of your attributes (``CUSTOM``)."""
        return self.type == "CUSTOM"

    @property
    def is_preset(self) -> bool:
        """Whether this is a built-in attribute (``PRESET``, e.g. ``COUNTRY``)."""
        return self.type == "PRESET"

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Attribute:
        """Build from the API's JSON object; unmodelled keys go to ``extra``."""
        data = _require_mapping(data, "an attribute")
        return cls(
            uid=data.get("uid") or "",
            key=data.get("key") or "",
            name=data.get("name") or "",
            description=data.get("description"),
            type=data.get("__type") or "CUSTOM",
            project=data.get("project"),
            **_audit_from(data),
            extra=_extra(data, cls._KEYS),
        )

    def to_api(self) -> dict[str, Any]:
        """The API's JSON object for this value (``extra`` keys written back)."""
        out: dict[str, Any] = {"uid": self.uid, "name": self.name, "key": self.key}
        _put(out, "description", self.description)
        _put(out, "project", self.project)
        _audit_to(self, out)
        out["__type"] = self.type
        return _merge(out, self.extra)


@attrs.frozen(kw_only=True)
class Audience:
    """An audience. ``definition`` is a :class:`~contentstack_personalize.rules.RuleCombination`
    (or a :class:`~contentstack_personalize.rules.RawNode` when it cannot be read), ``None`` for
    audiences synced from Lytics, which are read-only (:attr:`is_read_only`).

    Example::

        for audience in client.audiences.list():
            if not audience.is_read_only and isinstance(audience.definition, RuleCombination):
                print(audience.name, [rule.value for rule in audience.definition.walk()])
    """

    uid: str
    name: str
    description: str | None = None
    definition: RuleCombination | RawNode | None = None
    source: str | None = None
    project: str | None = None
    created_at: str | None = None
    created_by: str | None = None
    updated_at: str | None = None
    updated_by: str | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    _KEYS = ("uid", "name", "description", "definition", "source", "project", *_AUDIT_KEYS)

    @property
    def is_read_only(self) -> bool:
        """Synced from Lytics (``source: "LYTICS"``): cannot be changed through the API."""
        return isinstance(self.source, str) and self.source.upper() == "LYTICS"

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Audience:
        """Build from the API's JSON object; unmodelled keys go to ``extra``."""
        data = _require_mapping(data, "an audience")
        raw = data.get("definition")
        definition: RuleCombination | RawNode | None
        if raw is None:
            definition = None
        elif isinstance(raw, Mapping):
            definition = parse_definition(raw)
        else:
            definition = RawNode(data=raw)
        return cls(
            uid=data.get("uid") or "",
            name=data.get("name") or "",
            description=data.get("description"),
            definition=definition,
            source=data.get("source"),
            project=data.get("project"),
            **_audit_from(data),
            extra=_extra(data, cls._KEYS),
        )

    def to_api(self) -> dict[str, Any]:
        """The API's JSON object for this value (``extra`` keys written back)."""
        out: dict[str, Any] = {"uid": self.uid, "name": self.name}
        _put(out, "description", self.description)
        if self.definition is not None:
            out["definition"] = self.definition.to_api()
        _put(out, "source", self.source)
        _put(out, "project", self.project)
        _audit_to(self, out)
        return _merge(out, self.extra)


@attrs.frozen(kw_only=True)
class Event:
    """An event of the project's catalogue (what ``CustomEvent(key)`` conversions refer to).

    Example::

        event = client.events.create(key="clickCTA")
        client.users.track("user-42", [CustomEvent(event.key)])
    """

    uid: str
    key: str
    description: str | None = None
    project: str | None = None
    created_at: str | None = None
    created_by: str | None = None
    updated_at: str | None = None
    updated_by: str | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    _KEYS = ("uid", "key", "description", "project", *_AUDIT_KEYS)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Event:
        """Build from the API's JSON object; unmodelled keys go to ``extra``."""
        data = _require_mapping(data, "an event")
        return cls(
            uid=data.get("uid") or "",
            key=data.get("key") or "",
            description=data.get("description"),
            project=data.get("project"),
            **_audit_from(data),
            extra=_extra(data, cls._KEYS),
        )

    def to_api(self) -> dict[str, Any]:
        """The API's JSON object for this value (``extra`` keys written back)."""
        out: dict[str, Any] = {"uid": self.uid, "key": self.key}
        _put(out, "description", self.description)
        _put(out, "project", self.project)
        _audit_to(self, out)
        return _merge(out, self.extra)


@attrs.frozen(kw_only=True)
class Project:
    """A Personalize project of the organization.

    Example::

        for project in client.projects.list():
            print(project.uid, project.name)
    """

    uid: str
    name: str
    description: str | None = None
    organization_uid: str | None = None
    created_at: str | None = None
    created_by: str | None = None
    updated_at: str | None = None
    updated_by: str | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    _KEYS = ("uid", "name", "description", "organization", *_AUDIT_KEYS)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Project:
        """Build from the API's JSON object; unmodelled keys go to ``extra``."""
        data = _require_mapping(data, "a project")
        return cls(
            uid=data.get("uid") or "",
            name=data.get("name") or "",
            description=data.get("description"),
            organization_uid=data.get("organization"),
            **_audit_from(data),
            extra=_extra(data, cls._KEYS),
        )

    def to_api(self) -> dict[str, Any]:
        """The API's JSON object for this value (``extra`` keys written back)."""
        out: dict[str, Any] = {"uid": self.uid, "name": self.name}
        _put(out, "description", self.description)
        _put(out, "organization", self.organization_uid)
        _audit_to(self, out)
        return _merge(out, self.extra)


@attrs.frozen(kw_only=True)
class Experience:
    """An experience: ``type`` is ``SEGMENTED`` or ``AB_TEST``. ``short_uid`` is what the
    manifest and impressions use. Variants, tags and the rest stay in ``extra``.

    Example::

        tests = [e for e in client.experiences.list() if e.is_ab_test]
    """

    uid: str
    name: str
    type: str = "SEGMENTED"
    description: str | None = None
    short_uid: str | None = None
    status: str | None = None
    project: str | None = None
    created_at: str | None = None
    created_by: str | None = None
    updated_at: str | None = None
    updated_by: str | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    _KEYS = ("uid", "name", "__type", "description", "shortUid", "status", "project", *_AUDIT_KEYS)

    @property
    def is_ab_test(self) -> bool:
        """Whether this is an A/B test (``AB_TEST``)."""
        return self.type == "AB_TEST"

    @property
    def is_segmented(self) -> bool:
        """Whether this is a segmented experience (``SEGMENTED``)."""
        return self.type == "SEGMENTED"

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Experience:
        """Build from the API's JSON object; unmodelled keys go to ``extra``."""
        data = _require_mapping(data, "an experience")
        return cls(
            uid=data.get("uid") or "",
            name=data.get("name") or "",
            type=data.get("__type") or "SEGMENTED",
            description=data.get("description"),
            short_uid=data.get("shortUid"),
            status=data.get("status"),
            project=data.get("project"),
            **_audit_from(data),
            extra=_extra(data, cls._KEYS),
        )

    def to_api(self) -> dict[str, Any]:
        """The API's JSON object for this value (``extra`` keys written back)."""
        out: dict[str, Any] = {"uid": self.uid, "name": self.name}
        _put(out, "description", self.description)
        out["__type"] = self.type
        _put(out, "shortUid", self.short_uid)
        _put(out, "status", self.status)
        _put(out, "project", self.project)
        _audit_to(self, out)
        return _merge(out, self.extra)


# ----------------------------------------------------------------------------- edge


@attrs.frozen(kw_only=True)
class ManifestExperience:
    """One active experience of a user: the variant they see, or ``None`` (not in it).

    Example::

        for experience in client.users.manifest("user-42").experiences:
            print(experience.short_uid, experience.variant_alias)
    """

    short_uid: str
    active_variant_short_uid: str | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def variant_alias(self) -> str | None:
        """The CMS variant alias (``cs_personalize_<experience>_<variant>``), or ``None``."""
        if self.active_variant_short_uid is None:
            return None
        return f"cs_personalize_{self.short_uid}_{self.active_variant_short_uid}"

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> ManifestExperience:
        """Build from the API's JSON object; unmodelled keys go to ``extra``."""
        data = _require_mapping(data, "a manifest experience")
        return cls(
            short_uid=str(data.get("shortUid") or ""),
            active_variant_short_uid=data.get("activeVariantShortUid"),
            extra={k: v for k, v in data.items() if k not in ("shortUid", "activeVariantShortUid")},
        )

    def to_api(self) -> dict[str, Any]:
        """The API's JSON object for this value (``extra`` keys written back)."""
        out = {
            "shortUid": self.short_uid,
            "activeVariantShortUid": self.active_variant_short_uid,
        }
        return _merge(out, self.extra)


def _experiences(items: Iterable[ManifestExperience]) -> tuple[ManifestExperience, ...]:
    return tuple(items)


@attrs.frozen(kw_only=True)
class Manifest:
    """A user's active experiences, in priority order, and the user's UID (the one sent, or
    the one the edge generated for an anonymous user).

    Example::

        manifest = client.users.manifest("user-42")
        variant = manifest.variant_for("a")  # active variant of experience "a", or None
        aliases = manifest.variant_aliases  # for the CMS variants API
    """

    user_uid: str | None
    experiences: tuple[ManifestExperience, ...] = attrs.field(default=(), converter=_experiences)
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def variant_aliases(self) -> list[str]:
        """CMS variant aliases of the active variants, in priority order."""
        return [e.variant_alias for e in self.experiences if e.variant_alias is not None]

    def variant_for(self, experience_short_uid: str) -> str | None:
        """The active variant of one experience, or ``None``."""
        for experience in self.experiences:
            if experience.short_uid == experience_short_uid:
                return experience.active_variant_short_uid
        return None

    @classmethod
    def from_api(cls, data: Mapping[str, Any], *, user_uid: str | None = None) -> Manifest:
        """Build from the ``GET /manifest`` answer; ``user_uid`` is the UID the edge reported."""
        data = _require_mapping(data, "the manifest")
        raw = data.get("experiences") or []
        if not isinstance(raw, list):
            raise ValueError("the manifest's experiences is not a list")
        return cls(
            user_uid=user_uid,
            experiences=tuple(ManifestExperience.from_api(e) for e in raw),
            extra={k: v for k, v in data.items() if k != "experiences"},
        )

    def to_api(self) -> dict[str, Any]:
        """The manifest as the API's JSON."""
        return _merge({"experiences": [e.to_api() for e in self.experiences]}, self.extra)


def _non_empty_str(what: str) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, str) or not value:
            raise ValidationError(
                f"{what} must be a non-empty string, not {value!r}; "
                + (
                    "use the key of an event of client.events.list()"
                    if what == "event key"
                    else "take it from client.experiences.list() or the user's manifest"
                )
            )

    return check


@attrs.frozen(kw_only=True)
class Impression:
    """A user saw a variant: ``{"type": "IMPRESSION", "experienceShortUid", "variantShortUid"}``.

    Example::

        client.users.track(
            "user-42", [Impression(experience_short_uid="a", variant_short_uid="0")]
        )
    """

    experience_short_uid: str = attrs.field(validator=_non_empty_str("experience_short_uid"))
    variant_short_uid: str = attrs.field(validator=_non_empty_str("variant_short_uid"))

    def to_api(self) -> dict[str, Any]:
        """The event as the Edge API's JSON."""
        return {
            "type": "IMPRESSION",
            "experienceShortUid": self.experience_short_uid,
            "variantShortUid": self.variant_short_uid,
        }


@attrs.frozen(kw_only=True)
class CustomEvent:
    """A conversion: ``CustomEvent("clickCTA")`` -> ``{"type": "EVENT", "eventKey": "clickCTA"}``.

    The key must exist in the project's events (``client.events``).
    """

    key: str = attrs.field(kw_only=False, validator=_non_empty_str("event key"))

    def to_api(self) -> dict[str, Any]:
        """The event as the Edge API's JSON."""
        return {"type": "EVENT", "eventKey": self.key}


TrackedEvent: TypeAlias = Impression | CustomEvent
"""What ``client.users.track()`` sends."""
