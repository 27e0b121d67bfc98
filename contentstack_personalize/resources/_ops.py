"""Every resource call as a pure *operation* (see ``_core.py``): validation, the exact
request, and the parsing of the answer, shared by the sync and async resources.

Decisions where the API reference leaves things open:

- ``GET`` by uid exists only for experiences. ``attributes.get``, ``audiences.get`` and
  ``events.get`` list the collection and pick the uid, raising :class:`NotFoundError` (status
  404, no request id) when it is missing.
- ``PUT /{resource}/{uid}`` is sent with the **full** object (``{name, key, description}``,
  ``{key, description}``, ``{name, description, definition}``): fields not passed are read
  first (one list call) and sent unchanged, so a PUT with replace semantics cannot blank
  them. Pass the model object read earlier instead of its uid to skip that read.
  ``description=None`` clears a description (sent as ``""``).
- Audiences synced from Lytics are read-only: ``update``/``delete`` look the audience up and
  raise :class:`ConfigurationError` before sending the write.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import httpx

from .._http import check_user_uid
from .._types import NOT_GIVEN, NotGiven
from .._values import InvalidValue, describe, is_null, normalize
from ..errors import ConfigurationError, ConflictError, NotFoundError, ValidationError
from ..models import (
    Attribute,
    Audience,
    CustomEvent,
    Event,
    Experience,
    Impression,
    Manifest,
    Project,
    TrackedEvent,
    check_key,
)
from ..rules import MembershipEncoding, RuleCombination, flag_key, membership_rule
from ._core import Call, Op, json_body, path_uid, unexpected

USER_HEADER = "x-cs-personalize-user-uid"
#: The edge answers at most this many ``tags[]`` on ``GET /manifest``.
MAX_MANIFEST_TAGS = 10

M = TypeVar("M")


# ----------------------------------------------------------------------------- users (edge)


def _check_attributes(attributes: object) -> dict[str, Any]:
    if not isinstance(attributes, Mapping):
        raise ValidationError(
            f"attributes must be a mapping of key to value, not {type(attributes).__name__}"
        )
    for key in attributes:
        if not isinstance(key, str):
            raise ValidationError(
                f"attribute key {key!r} is {type(key).__name__}; keys must be strings; "
                "nothing was sent"
            )
        if not key.strip():
            raise ValidationError(f"attribute key {key!r} is empty; nothing was sent")
    # The same value rules as a sync (contentstack_personalize._values.normalize): numpy and
    # pandas scalars, Decimal, dates, enums, sets and bytes become JSON the same way, and what
    # a JSON number cannot carry exactly (integers past 2**53 - 1) is refused. Unlike a sync,
    # NaN and NA are refused too: here null is sent only when the caller passes None.
    return {key: _json_value(value, key) for key, value in attributes.items()}


def _json_value(value: Any, where: str) -> Any:
    if isinstance(value, Mapping):
        for k in value:
            if not isinstance(k, str):
                raise ValidationError(
                    f"{where}: object key {k!r} is {type(k).__name__}; JSON keys must be "
                    "strings; nothing was sent"
                )
        return {k: _json_value(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        for item in value:
            _json_value(item, f"{where}{{...}}")  # NaN, keys and types checked like lists
    if value is not None and (
        is_null(value) or (isinstance(value, float) and not math.isfinite(value))
    ):
        raise ValidationError(
            f"{where}: {describe(value)} ({type(value).__name__}) is not JSON-serialisable; "
            "pass None to send null; nothing was sent"
        )
    try:
        return normalize(value)
    except InvalidValue as exc:
        raise ValidationError(
            f"{where}: {describe(value)} ({type(value).__name__}): {exc}; nothing was sent"
        ) from None


def set_attributes(user_uid: str, attributes: Mapping[str, Any]) -> Op[None]:
    uid = check_user_uid(user_uid)
    body = _check_attributes(attributes)
    # Any 2xx is success; the body is plain text and is never parsed.
    yield Call(
        api="edge",
        method="PATCH",
        path="/user-attributes",
        json=body,
        headers={USER_HEADER: uid},
    )


def merge(source_uid: str, target_uid: str) -> Op[None]:
    source = check_user_uid(source_uid)
    target = check_user_uid(target_uid)
    if source == target:
        raise ValidationError(f"source and target are the same user ({source!r}); nothing to merge")
    yield Call(
        api="edge",
        method="POST",
        path="/user-attributes/actions/merge",
        json={"sourceUserUid": source, "targetUserUid": target},
    )


def track(user_uid: str, events: Sequence[TrackedEvent]) -> Op[None]:
    uid = check_user_uid(user_uid)
    if isinstance(events, (Impression, CustomEvent)):
        raise ValidationError("events must be a list of events: pass [event]")
    if isinstance(events, (str, bytes, Mapping)):
        raise ValidationError(
            "events must be a list of Impression(...) or CustomEvent(...) objects"
        )
    items = builtins.list(events)
    if not items:
        raise ValidationError(
            "no events to track; nothing was sent. Pass at least one Impression(...) or "
            "CustomEvent(key)"
        )
    for i, event in enumerate(items):
        if not isinstance(event, (Impression, CustomEvent)):
            raise ValidationError(
                f"events[{i}] is {type(event).__name__} ({event!r}); use "
                "Impression(experience_short_uid=..., variant_short_uid=...) or "
                "CustomEvent(key); nothing was sent"
            )
    yield Call(
        api="edge",
        method="POST",
        path="/events",
        json=[e.to_api() for e in items],
        headers={USER_HEADER: uid},
    )


def manifest(user_uid: str | None, tags: Iterable[str] | None) -> Op[Manifest]:
    headers = None if user_uid is None else {USER_HEADER: check_user_uid(user_uid)}
    params: builtins.list[tuple[str, Any]] | None = None
    if tags is not None:
        if isinstance(tags, (str, bytes)):
            raise ValidationError("tags must be a list of strings, not one string")
        tag_list = builtins.list(tags)
        if len(tag_list) > MAX_MANIFEST_TAGS:
            raise ValidationError(
                f"at most {MAX_MANIFEST_TAGS} tags per manifest request, got {len(tag_list)}; "
                "nothing was sent"
            )
        for tag in tag_list:
            if not isinstance(tag, str) or not tag:
                raise ValidationError(f"tags must be non-empty strings, not {tag!r}")
        params = [("tags[]", tag) for tag in tag_list] or None
    response = yield Call(
        api="edge", method="GET", path="/manifest", params=params, headers=headers
    )
    body = json_body(response)
    uid = response.headers.get(USER_HEADER) or user_uid
    try:
        return Manifest.from_api(body, user_uid=uid)
    except ValueError as exc:
        raise unexpected(response, str(exc)) from exc


# ----------------------------------------------------------------------------- generic management


def _parse_one(response: httpx.Response, parse: Callable[[Any], M]) -> M:
    body = json_body(response)
    try:
        return parse(body)
    except ValueError as exc:
        raise unexpected(response, str(exc)) from exc


def list_of(resource: str, parse: Callable[[Any], M], **call: Any) -> Op[builtins.list[M]]:
    response = yield Call(api="management", method="GET", path=f"/{resource}", **call)
    body = json_body(response)
    if isinstance(body, Mapping):  # tolerate a wrapped array: {"<resource>": [...]}
        arrays = [v for v in body.values() if isinstance(v, builtins.list)]
        if len(arrays) == 1:
            body = arrays[0]
    if not isinstance(body, builtins.list):
        raise unexpected(response, "expected a JSON array")
    try:
        return [parse(item) for item in body]
    except ValueError as exc:
        raise unexpected(response, str(exc)) from exc


def find(resource: str, uid: str, parse: Callable[[Any], M], uid_of: Callable[[M], str]) -> Op[M]:
    path_uid(uid, resource[:-1])
    items = yield from list_of(resource, parse)
    for item in items:
        if uid_of(item) == uid:
            return item
    raise NotFoundError(
        f"no {resource[:-1]} with uid {uid!r} in this project (GET /{resource}); "
        f"check the uid and the project, e.g. with client.{resource}.list()",
        status_code=404,
    )


def create(resource: str, body: dict[str, Any], parse: Callable[[Any], M], **call: Any) -> Op[M]:
    response = yield Call(api="management", method="POST", path=f"/{resource}", json=body, **call)
    return _parse_one(response, parse)


def put(
    resource: str, uid: str, body: dict[str, Any], parse: Callable[[Any], M], fallback: Any
) -> Op[M]:
    response = yield Call(
        api="management",
        method="PUT",
        path=f"/{resource}/{path_uid(uid, resource[:-1])}",
        json=body,
    )
    if json_body(response) is None:  # no body: the object is what was sent
        return parse({**fallback, **body})
    return _parse_one(response, parse)


def delete(resource: str, uid: str) -> Op[None]:
    yield Call(
        api="management", method="DELETE", path=f"/{resource}/{path_uid(uid, resource[:-1])}"
    )


def _check_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValidationError(f"{what} name must be a non-empty string, not {name!r}")
    return name


def _check_description(description: object) -> str | None:
    if description is not None and not isinstance(description, str):
        raise ValidationError(f"description must be a string or None, not {description!r}")
    return description


def _given(value: Any) -> bool:
    return not isinstance(value, NotGiven)


# ----------------------------------------------------------------------------- attributes


def _attribute_uid(a: Attribute) -> str:
    return a.uid


def attributes_list() -> Op[builtins.list[Attribute]]:
    return (yield from list_of("attributes", Attribute.from_api))


def attributes_get(uid: str) -> Op[Attribute]:
    return (yield from find("attributes", uid, Attribute.from_api, _attribute_uid))


def attributes_create(key: str, name: str | None, description: str | None) -> Op[Attribute]:
    check_key(key)
    body: dict[str, Any] = {"name": key if name is None else _check_name(name, "attribute")}
    body["key"] = key
    if _check_description(description) is not None:
        body["description"] = description
    return (yield from create("attributes", body, Attribute.from_api))


def attributes_update(
    uid: str | Attribute,
    key: str | NotGiven,
    name: str | NotGiven,
    description: str | NotGiven | None,
) -> Op[Attribute]:
    if _given(key):
        check_key(key)
    if _given(name):
        _check_name(name, "attribute")
    if _given(description):
        _check_description(description)
    if isinstance(uid, Attribute):
        current: Attribute | None = uid
    else:
        path_uid(uid, "attribute")
        current = None
    all_given = _given(key) and _given(name) and _given(description)
    if current is None and not all_given:
        current = yield from attributes_get(uid)  # type: ignore[arg-type]
    if current is not None and current.is_preset:
        raise ConfigurationError(
            f"attribute {current.key!r} is a preset attribute; presets cannot be changed; "
            "only custom attributes can (Attribute.is_custom)"
        )
    target_uid = current.uid if current is not None else uid
    assert isinstance(target_uid, str)
    if current is not None and not (_given(key) or _given(name) or _given(description)):
        return current
    body = {
        "name": name if isinstance(name, str) else current.name if current else "",
        "key": key if isinstance(key, str) else current.key if current else "",
        "description": _description_value(description, current.description if current else None),
    }
    fallback = current.to_api() if current is not None else {"uid": target_uid}
    return (yield from put("attributes", target_uid, body, Attribute.from_api, fallback))


def _description_value(given: str | NotGiven | None, current: str | None) -> str:
    if isinstance(given, NotGiven):
        return current or ""
    return given or ""


def attributes_delete(uid: str | Attribute) -> Op[None]:
    if isinstance(uid, Attribute):
        if uid.is_preset:
            raise ConfigurationError(
                f"attribute {uid.key!r} is a preset attribute; presets cannot be deleted; "
                "only custom attributes can (Attribute.is_custom)"
            )
        uid = uid.uid
    yield from delete("attributes", uid)


def attributes_ensure(keys: Iterable[str] | Mapping[str, str]) -> Op[builtins.list[Attribute]]:
    if isinstance(keys, (str, bytes)):
        raise ValidationError("keys must be a list of keys (or a mapping of key to name)")
    wanted: dict[str, str] = {}
    pairs = keys.items() if isinstance(keys, Mapping) else ((k, k) for k in keys)
    for key, name in pairs:
        check_key(key)
        wanted[key] = _check_name(name, f"attribute {key!r}")
    existing = yield from attributes_list()
    by_key = {a.key: a for a in existing}
    preset_keys = {a.key.upper() for a in existing if a.is_preset}
    clashes = [
        k for k in wanted if (k in by_key and by_key[k].is_preset) or k.upper() in preset_keys
    ]
    if clashes:
        raise ConfigurationError(
            f"{', '.join(map(repr, clashes))}: taken by preset attributes; "
            "preset keys cannot be used for custom attributes: sync under another key"
        )
    conflict: ConflictError | None = None
    for key, name in wanted.items():
        if key in by_key:
            continue
        try:
            by_key[key] = yield from create(
                "attributes", {"name": name, "key": key}, Attribute.from_api
            )
        except ConflictError as exc:  # created meanwhile by another process
            conflict = exc
    if conflict is not None:
        for attribute in (yield from attributes_list()):
            by_key.setdefault(attribute.key, attribute)
        if any(k not in by_key for k in wanted):
            raise conflict
    return [by_key[k] for k in wanted]


# ----------------------------------------------------------------------------- audiences


def _audience_uid(a: Audience) -> str:
    return a.uid


def _writable(audience: Audience, verb: str) -> None:
    if audience.is_read_only:
        raise ConfigurationError(
            f"audience {audience.name!r} ({audience.uid}) is synced from {audience.source} and "
            f"read-only; it cannot be {verb} through the API; nothing was sent"
        )


def audiences_list() -> Op[builtins.list[Audience]]:
    return (yield from list_of("audiences", Audience.from_api))


def audiences_get(uid: str) -> Op[Audience]:
    return (yield from find("audiences", uid, Audience.from_api, _audience_uid))


def _check_definition(definition: object) -> RuleCombination:
    if not isinstance(definition, RuleCombination):
        raise ValidationError(
            "definition must be a RuleCombination (build one with rules.all_of / any_of), "
            f"not {type(definition).__name__}"
        )
    return definition


def audiences_create(
    name: str, definition: RuleCombination, description: str | None
) -> Op[Audience]:
    body: dict[str, Any] = {"name": _check_name(name, "audience")}
    if _check_description(description) is not None:
        body["description"] = description
    body["definition"] = _check_definition(definition).to_api()
    return (yield from create("audiences", body, Audience.from_api))


def audiences_update(
    uid: str | Audience,
    name: str | NotGiven,
    description: str | NotGiven | None,
    definition: RuleCombination | NotGiven,
) -> Op[Audience]:
    if _given(name):
        _check_name(name, "audience")
    if _given(description):
        _check_description(description)
    if _given(definition):
        _check_definition(definition)
    current = uid if isinstance(uid, Audience) else (yield from audiences_get(uid))
    _writable(current, "changed")
    if not (_given(name) or _given(description) or _given(definition)):
        return current
    body: dict[str, Any] = {
        "name": name if isinstance(name, str) else current.name,
        "description": _description_value(description, current.description),
    }
    if isinstance(definition, RuleCombination):
        body["definition"] = definition.to_api()
    elif current.definition is not None:
        body["definition"] = current.definition.to_api()
    return (yield from put("audiences", current.uid, body, Audience.from_api, current.to_api()))


def audiences_delete(uid: str | Audience) -> Op[None]:
    current = uid if isinstance(uid, Audience) else (yield from audiences_get(uid))
    _writable(current, "deleted")
    yield from delete("audiences", current.uid)


def _membership_names(
    name: str, member_id: str | None, attribute_key: str, encoding: MembershipEncoding
) -> tuple[str, str]:
    """The member identifier and the attribute key of a membership audience."""
    member = member_id if member_id is not None else name
    key = (
        flag_key(member)
        if encoding == "boolean" and attribute_key == "audiences"
        else attribute_key
    )
    return member, key


def _plan_membership(
    attributes: builtins.list[Attribute],
    audiences: builtins.list[Audience],
    *,
    name: str,
    member_id: str,
    attribute_key: str,
    encoding: MembershipEncoding,
    delimiter: str,
    update: bool,
) -> tuple[str, RuleCombination, Audience | None]:
    """Pure decision: ``("create" | "update" | "keep", definition, existing audience)``."""
    attribute = next((a for a in attributes if a.key == attribute_key), None)
    if attribute is None:  # pragma: no cover - ensure() ran just before
        raise ConfigurationError(
            f"attribute {attribute_key!r} is missing; create it with "
            f"client.attributes.ensure([{attribute_key!r}])"
        )
    definition = membership_rule(attribute, member_id, encoding=encoding, delimiter=delimiter)
    existing = [a for a in audiences if a.name == name]
    if not existing:
        return "create", definition, None
    audience = existing[0]
    if audience.is_read_only:
        raise ConfigurationError(
            f"audience {name!r} is synced from Lytics and cannot be changed; choose another name"
        )
    current = audience.definition.to_api() if audience.definition is not None else None
    if current == definition.to_api():
        return "keep", definition, audience
    if not update:
        raise ConfigurationError(
            f"audience {name!r} exists with a different definition; pass update=True to "
            "replace it with the membership rule"
        )
    return "update", definition, audience


def audiences_ensure_membership(
    name: str,
    member_id: str | None,
    attribute_key: str,
    encoding: MembershipEncoding,
    delimiter: str,
    description: str | None,
    update: bool,
) -> Op[Audience]:
    """The membership attribute (created once) and an audience ``name`` whose rule matches the
    users whose attribute holds ``member_id``; an existing audience with another definition
    is replaced only with ``update``."""
    member, key = _membership_names(name, member_id, attribute_key, encoding)
    attributes = yield from attributes_ensure([key])
    action, definition, existing = _plan_membership(
        attributes,
        (yield from audiences_list()),
        name=name,
        member_id=member,
        attribute_key=key,
        encoding=encoding,
        delimiter=delimiter,
        update=update,
    )
    if action == "create":
        return (yield from audiences_create(name, definition, description))
    assert existing is not None
    if action == "update":
        return (yield from audiences_update(existing, NOT_GIVEN, NOT_GIVEN, definition))
    return existing


# ----------------------------------------------------------------------------- events


def _event_uid(e: Event) -> str:
    return e.uid


def events_list() -> Op[builtins.list[Event]]:
    return (yield from list_of("events", Event.from_api))


def events_get(uid: str) -> Op[Event]:
    return (yield from find("events", uid, Event.from_api, _event_uid))


def events_create(key: str, description: str | None) -> Op[Event]:
    body: dict[str, Any] = {"key": check_key(key, what="event")}
    if _check_description(description) is not None:
        body["description"] = description
    return (yield from create("events", body, Event.from_api))


def events_update(
    uid: str | Event, key: str | NotGiven, description: str | NotGiven | None
) -> Op[Event]:
    if _given(key):
        check_key(key, what="event")
    if _given(description):
        _check_description(description)
    if isinstance(uid, Event):
        current: Event | None = uid
    else:
        path_uid(uid, "event")
        current = None
    if current is None and not (_given(key) and _given(description)):
        current = yield from events_get(uid)  # type: ignore[arg-type]
    if current is not None and not (_given(key) or _given(description)):
        return current
    target_uid = current.uid if current is not None else uid
    assert isinstance(target_uid, str)
    body = {
        "key": key if isinstance(key, str) else current.key if current else "",
        "description": _description_value(description, current.description if current else None),
    }
    fallback = current.to_api() if current is not None else {"uid": target_uid}
    return (yield from put("events", target_uid, body, Event.from_api, fallback))


def events_delete(uid: str | Event) -> Op[None]:
    yield from delete("events", uid.uid if isinstance(uid, Event) else uid)


# ----------------------------------------------------------------------------- projects

_ORG = {"project_scoped": False, "organization_scoped": True}


def projects_list() -> Op[builtins.list[Project]]:
    return (yield from list_of("projects", Project.from_api, **_ORG))


def projects_create(name: str, description: str | None) -> Op[Project]:
    body: dict[str, Any] = {"name": _check_name(name, "project")}
    if _check_description(description) is not None:
        body["description"] = description
    return (yield from create("projects", body, Project.from_api, **_ORG))


# ----------------------------------------------------------------------------- experiences


def experiences_list() -> Op[builtins.list[Experience]]:
    return (yield from list_of("experiences", Experience.from_api))


def experiences_get(uid: str) -> Op[Experience]:
    response = yield Call(
        api="management", method="GET", path=f"/experiences/{path_uid(uid, 'experience')}"
    )
    return _parse_one(response, Experience.from_api)
