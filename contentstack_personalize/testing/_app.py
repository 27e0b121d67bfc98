"""The request handler: routes an ``EmulatorRequest`` to the Edge, Management, CMA or Developer
Hub emulation and computes the answer from ``State``. Pure apart from the state it mutates; no
locking, no faults, no I/O (the emulator wraps it with those).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from ._http import EmulatorRequest, EmulatorResponse
from ._state import PRESET_ATTRIBUTES, Login, Project, RefreshToken, State, Token, now_iso

__all__ = [
    "KNOWN_CONDITIONS",
    "App",
    "evaluate_definition",
    "in_audience",
    "route",
    "validate_definition",
]

_PREFIXES = {
    "/edge": "edge",
    "/management": "management",
    "/cma": "cma",
    "/developerhub": "developerhub",
}
# Order matters: "personalize-api.contentstack.com" also contains "api.contentstack".
_HOSTS = (
    ("personalize-edge", "edge"),
    ("personalize-api", "management"),
    ("developerhub-api", "developerhub"),
    ("api.contentstack", "cma"),
)

KNOWN_CONDITIONS = frozenset(
    {
        "STRING_EQUALS",
        "CONTAINS_SUBSTRING",
        "NUMBER_EQUAL_TO",
        "NUMBER_GREATER_THAN",
        "NUMBER_LESS_THAN",
        "IS_TRUE",
        "IS_FALSE",
        "HAS_ANY_VALUE",
        "BEFORE_TIME",
        "AFTER_TIME",
        "BETWEEN_TIME",
        "JSON_MATCH",
    }
)
_STRING_CONDITIONS = frozenset({"STRING_EQUALS", "CONTAINS_SUBSTRING"})
_NUMBER_CONDITIONS = frozenset({"NUMBER_EQUAL_TO", "NUMBER_GREATER_THAN", "NUMBER_LESS_THAN"})
_NO_OPTIONS = frozenset({"IS_TRUE", "IS_FALSE", "HAS_ANY_VALUE"})

ATTRIBUTE_KEY_RE = re.compile(r"^[A-Za-z0-9_]{1,100}$")
EVENT_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
MAX_TAGS = 10
MAX_RULES = 50
MAX_PROJECTS = 3
MAX_AUTHTOKENS_PER_USER = 20
LIMITS = {"audiences": 100, "events": 100, "experiences": 100}

_TEXT = (("content-type", "text/plain; charset=utf-8"),)
_JSON = (("content-type", "application/json; charset=utf-8"),)


def route(request: EmulatorRequest) -> tuple[str | None, str]:
    """(api, path inside that API): by path prefix first, then by host name."""
    path = request.path
    for prefix, api in _PREFIXES.items():
        if path == prefix or path.startswith(prefix + "/"):
            return api, path[len(prefix) :] or "/"
    host = request.host
    for needle, api in _HOSTS:
        if needle in host:
            return api, path
    return None, path


def json_response(
    status: int, body: Any, headers: tuple[tuple[str, str], ...] = ()
) -> EmulatorResponse:
    return EmulatorResponse(
        status=status,
        headers=_JSON + headers,
        body=json.dumps(body, separators=(",", ":")).encode(),
    )


def error(status: int, code: str, message: str, **extra: Any) -> EmulatorResponse:
    return json_response(status, {"error": code, "message": message, **extra})


def field_errors(errors: Mapping[str, list[str]]) -> EmulatorResponse:
    return json_response(400, {"errors": dict(errors)})


def text_response(
    status: int, text: str, headers: tuple[tuple[str, str], ...] = ()
) -> EmulatorResponse:
    return EmulatorResponse(status=status, headers=_TEXT + headers, body=text.encode())


def no_content() -> EmulatorResponse:
    return EmulatorResponse(status=204)


def unknown_route(api: str | None, request: EmulatorRequest, path: str) -> EmulatorResponse:
    if api is None:
        return error(
            404,
            "emulator.UNKNOWN_API",
            f"the emulator serves no API at host {request.host!r} path {request.path!r}; "
            "prefix the path with one of /edge, /management, /cma, /developerhub, or use a "
            "host containing personalize-edge, personalize-api, developerhub-api or "
            "api.contentstack",
        )
    return error(404, "personalize.ROUTE_NOT_FOUND", f"Cannot {request.method} {path}")


def _parse_json(body: bytes) -> tuple[bool, Any]:
    try:
        return True, json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False, None


def _is_json(request: EmulatorRequest) -> bool:
    return "json" in request.headers.get("content-type", "").lower()


# ----------------------------------------------------------------------------- audiences


def validate_definition(definition: Any, project: Project, *, strict: bool = True) -> list[str]:
    """Problems with an audience definition (empty when valid). ``strict=False``
    (``management_validation="lenient"``) checks only the documented shape: not that
    referenced attributes exist, nor the cap on rules."""
    problems: list[str] = []
    rules = [0]

    def walk(node: Any, where: str) -> None:
        if not isinstance(node, dict):
            problems.append(f"{where}: must be an object")
            return
        kind = node.get("__type")
        if kind == "RuleCombination":
            if node.get("combinationType") not in ("AND", "OR"):
                problems.append(f"{where}.combinationType: must be AND or OR")
            children = node.get("rules")
            if not isinstance(children, list) or not children:
                problems.append(f"{where}.rules: must be a non-empty array")
                return
            for i, child in enumerate(children):
                walk(child, f"{where}.rules[{i}]")
        elif kind == "Rule":
            rules[0] += 1
            attribute = node.get("attribute")
            if not isinstance(attribute, dict):
                problems.append(f"{where}.attribute: must be an object")
            else:
                ref = attribute.get("ref")
                ref_type = attribute.get("__type")
                if ref_type == "CustomAttributeReference":
                    found = project.attributes.get(ref) if isinstance(ref, str) else None
                    if not isinstance(ref, str) or not ref:
                        problems.append(f"{where}.attribute.ref: must be an attribute uid")
                    elif strict and (found is None or found["__type"] != "CUSTOM"):
                        problems.append(
                            f"{where}.attribute.ref: no custom attribute with uid {ref!r}"
                        )
                elif ref_type == "PresetAttributeReference":
                    if strict and ref not in PRESET_ATTRIBUTES:
                        problems.append(f"{where}.attribute.ref: no preset attribute {ref!r}")
                else:
                    problems.append(
                        f"{where}.attribute.__type: must be CustomAttributeReference or "
                        "PresetAttributeReference"
                    )
            condition = node.get("attributeMatchCondition")
            if condition not in KNOWN_CONDITIONS:
                problems.append(
                    f"{where}.attributeMatchCondition: unknown condition {condition!r}; "
                    f"use one of {', '.join(sorted(KNOWN_CONDITIONS))}"
                )
            options = node.get("attributeMatchOptions")
            if condition in _STRING_CONDITIONS:
                if not (
                    isinstance(options, dict)
                    and options.get("__type") == "StringMatchOptions"
                    and isinstance(options.get("value"), str)
                ):
                    problems.append(
                        f"{where}.attributeMatchOptions: {condition} needs StringMatchOptions "
                        "with a string value"
                    )
            elif condition in _NUMBER_CONDITIONS:
                value = options.get("value") if isinstance(options, dict) else None
                if not (
                    isinstance(options, dict)
                    and options.get("__type") == "NumberMatchOptions"
                    and isinstance(value, (int, float))
                    and not isinstance(value, bool)
                ):
                    problems.append(
                        f"{where}.attributeMatchOptions: {condition} needs NumberMatchOptions "
                        "with a number value"
                    )
            elif options is not None and not isinstance(options, dict):
                problems.append(f"{where}.attributeMatchOptions: must be an object")
            invert = node.get("invertCondition", False)
            if not isinstance(invert, bool):
                problems.append(f"{where}.invertCondition: must be a boolean")
        else:
            problems.append(f"{where}.__type: must be RuleCombination or Rule")

    walk(definition, "definition")
    if strict and rules[0] > MAX_RULES:
        problems.append(f"definition: at most {MAX_RULES} rules per audience, got {rules[0]}")
    return problems


def _number(value: Any, lenient: bool) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if lenient and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _match(
    condition: str, value: Any, options: Any, lenient: bool, ignore_case: bool = False
) -> bool:
    """One rule condition against one attribute value.

    Strict (the default): values are compared as the type the condition names, never
    converted: a number rule matches JSON numbers only (``"2500"`` is text and never matches),
    ``IS_TRUE``/``IS_FALSE`` match the JSON booleans only, ``STRING_EQUALS`` and
    ``CONTAINS_SUBSTRING`` match text only. Lenient converts: number-like text matches number
    rules, ``"true"``/``"false"`` match the boolean rules, and ``STRING_EQUALS`` compares
    ``str(value)`` (so 42 equals ``"42"``). ``HAS_ANY_VALUE`` matches any value that was set,
    the empty string included; lenient treats ``""`` as no value.

    A list value: no documented condition tests a list, so strict never matches one with a
    string or number condition; lenient matches when one item does. ``ignore_case`` compares
    text case-insensitively (``string_case="insensitive"``).
    """
    target = options.get("value") if isinstance(options, dict) else None
    if isinstance(value, list) and (
        condition in _STRING_CONDITIONS or condition in _NUMBER_CONDITIONS
    ):
        return lenient and any(
            _match(condition, item, options, lenient, ignore_case) for item in value
        )
    if condition == "HAS_ANY_VALUE":
        # Strict: any value that was set, "" included; lenient: "" counts as no value.
        return value is not None and not (lenient and value == "")
    if condition == "IS_TRUE":
        return value is True or (lenient and value == "true")
    if condition == "IS_FALSE":
        return value is False or (lenient and value == "false")
    if condition in _STRING_CONDITIONS:
        if lenient and condition == "STRING_EQUALS":
            value = None if value is None else str(value)
            target = None if target is None else str(target)
        if not (isinstance(value, str) and isinstance(target, str)):
            return False
        if ignore_case:
            value, target = value.casefold(), target.casefold()
        return value == target if condition == "STRING_EQUALS" else target in value
    if condition in _NUMBER_CONDITIONS:
        a, b = _number(value, lenient), _number(target, lenient)
        if a is None or b is None:
            return False
        if condition == "NUMBER_EQUAL_TO":
            return a == b
        return a > b if condition == "NUMBER_GREATER_THAN" else a < b
    # Time and JSON conditions are not evaluated by the emulator.
    return False


def evaluate_definition(
    node: Any,
    attributes: Mapping[str, Any],
    project: Project,
    *,
    lenient: bool = False,
    ignore_case: bool = False,
) -> bool:
    """Whether a user with these attributes is in an audience with this definition."""
    if not isinstance(node, dict):
        return False
    if node.get("__type") == "RuleCombination":
        results = (
            evaluate_definition(r, attributes, project, lenient=lenient, ignore_case=ignore_case)
            for r in node.get("rules", ())
        )
        return all(results) if node.get("combinationType") == "AND" else any(results)
    attribute = node.get("attribute") or {}
    ref = attribute.get("ref")
    if attribute.get("__type") == "CustomAttributeReference":
        found = project.attributes.get(ref) if isinstance(ref, str) else None
        key = found["key"] if found else None
    else:
        key = ref
    value = attributes.get(key) if key is not None else None
    matched = _match(
        str(node.get("attributeMatchCondition")),
        value,
        node.get("attributeMatchOptions"),
        lenient,
        ignore_case,
    )
    return matched != bool(node.get("invertCondition", False))


def in_audience(
    project: Project,
    audience: dict[str, Any],
    user_uid: str,
    lenient: bool,
    ignore_case: bool = False,
    live: Mapping[str, Any] | None = None,
) -> bool:
    """Whether a user of the project is in this audience (the rules, or a Lytics member list).
    The one rule engine behind the manifest and ``PersonalizeEmulator.in_audience``. ``live``
    attributes (the manifest's ``x-live-attributes``) override the stored ones."""
    if audience.get("source") == "LYTICS":
        return user_uid in audience.get("_members", ())
    attributes = project.users.get(user_uid, {})
    if live:
        attributes = {**attributes, **live}
    return evaluate_definition(
        audience.get("definition"),
        attributes,
        project,
        lenient=lenient,
        ignore_case=ignore_case,
    )


def _live_attributes(request: EmulatorRequest) -> dict[str, Any]:
    """The manifest's ``x-live-attributes`` header (a JSON object the JS SDK sends from its
    ``liveAttributes`` option): used for this manifest only, never stored. Anything that is
    not a JSON object is ignored."""
    raw = request.headers.get("x-live-attributes")
    if not raw:
        return {}
    try:
        live = json.loads(raw)
    except ValueError:
        return {}
    return live if isinstance(live, dict) else {}


def public(obj: dict[str, Any]) -> dict[str, Any]:
    """An object without the emulator's private ``_`` fields."""
    return {k: v for k, v in obj.items() if not (k.startswith("_") and not k.startswith("__"))}


# ----------------------------------------------------------------------------- the app


class App:
    """The four APIs over one ``State``. Every ``handle_*`` method expects the emulator lock."""

    def __init__(
        self,
        state: State,
        *,
        unknown_attribute: str,
        null_value: str,
        unknown_event: str,
        audience_matching: str,
        content_type: str,
        string_case: str,
        edge_validation: str,
        merge_source: str,
        management_validation: str,
        retry_after_header: bool,
        refresh_token_rotation: bool,
        management_rate_limit: float | None,
        attribute_limit: int,
        oauth_expires_in: int,
        clock: Callable[[], float],
    ) -> None:
        self.state = state
        self.unknown_attribute = unknown_attribute
        self.null_value = null_value
        self.unknown_event = unknown_event
        self.audience_matching = audience_matching
        self.content_type = content_type
        self.string_case = string_case
        self.edge_validation = edge_validation
        self.merge_source = merge_source
        self.management_validation = management_validation
        self.retry_after_header = retry_after_header
        self.refresh_token_rotation = refresh_token_rotation
        self.management_rate_limit = management_rate_limit
        self.attribute_limit = attribute_limit
        self.oauth_expires_in = oauth_expires_in
        self.clock = clock
        self.token_refreshes = 0
        self.code_exchanges = 0

    def handle(self, api: str | None, path: str, request: EmulatorRequest) -> EmulatorResponse:
        if api == "edge":
            return self.handle_edge(path, request)
        if api == "management":
            return self.handle_management(path, request)
        if api == "cma":
            return self.handle_cma(path, request)
        if api == "developerhub":
            return self.handle_developerhub(path, request)
        return unknown_route(None, request, path)

    # ------------------------------------------------------------------------- edge

    def handle_edge(self, path: str, request: EmulatorRequest) -> EmulatorResponse:
        method = request.method
        if path == "/user-attributes" and method == "PATCH":
            return self._edge_attributes(request)
        if path == "/user-attributes/actions/merge" and method == "POST":
            return self._edge_merge(request)
        if path == "/events" and method == "POST":
            return self._edge_events(request)
        if path == "/manifest" and method == "GET":
            return self._edge_manifest(request)
        return unknown_route("edge", request, path)

    def _edge_project(self, request: EmulatorRequest, area: str) -> Project | EmulatorResponse:
        uid = request.headers.get("x-project-uid")
        if not uid:
            return error(
                404,
                f"personalize.{area}.PROJECT_NOT_FOUND",
                "Project not found: the x-project-uid header is missing",
            )
        project = self.state.projects.get(uid)
        if project is None:
            return error(404, f"personalize.{area}.PROJECT_NOT_FOUND", f"Project {uid} not found")
        return project

    def _edge_user(
        self, request: EmulatorRequest, area: str
    ) -> tuple[str, tuple[tuple[str, str], ...]] | EmulatorResponse:
        """The user the request names, and the headers to answer with: with
        ``edge_validation="lenient"`` a missing user header gets a generated uid, answered in
        ``x-cs-personalize-user-uid`` as the manifest does."""
        user = request.headers.get("x-cs-personalize-user-uid")
        if not user and self.edge_validation == "lenient":
            generated = self.state.new_user_uid()
            return generated, (("x-cs-personalize-user-uid", generated),)
        if not user:
            return error(
                400,
                f"personalize.{area}.USER_UID_REQUIRED",
                "The x-cs-personalize-user-uid header is required",
            )
        return str(user), ()

    def _edge_json(self, request: EmulatorRequest, area: str) -> tuple[bool, Any]:
        if self.content_type == "json" and not _is_json(request):
            return False, error(
                400,
                f"personalize.{area}.INVALID_CONTENT_TYPE",
                "Send the body as JSON with content-type: application/json",
            )
        ok, body = _parse_json(request.body)
        if not ok:
            return False, error(
                400, f"personalize.{area}.INVALID_BODY", "The body is not valid JSON"
            )
        return True, body

    def _edge_attributes(self, request: EmulatorRequest) -> EmulatorResponse:
        area = "USER_ATTRIBUTES"
        project = self._edge_project(request, area)
        if isinstance(project, EmulatorResponse):
            return project
        named = self._edge_user(request, area)
        if isinstance(named, EmulatorResponse):
            return named
        user, answer_headers = named
        ok, body = self._edge_json(request, area)
        if not ok:
            return body  # type: ignore[no-any-return]
        if not isinstance(body, dict):
            return error(
                400,
                f"personalize.{area}.INVALID_BODY",
                "The body must be a JSON object of attributes",
            )
        if self.unknown_attribute != "accept":
            known = project.custom_attribute_keys()
            unknown = sorted(k for k in body if k not in known)
            if unknown:
                if self.unknown_attribute == "reject":
                    return error(
                        400,
                        f"personalize.{area}.INVALID_ATTRIBUTE",
                        f"Unknown attribute keys: {', '.join(unknown)}",
                        keys=unknown,
                    )
                body = {k: v for k, v in body.items() if k in known}
        attributes = project.users.setdefault(user, {})
        for key, value in body.items():
            if value is None and self.null_value == "delete":
                attributes.pop(key, None)
            else:
                attributes[key] = value
        return text_response(200, "User Attributes added successfully", answer_headers)

    def _edge_merge(self, request: EmulatorRequest) -> EmulatorResponse:
        area = "USER_ATTRIBUTES"
        project = self._edge_project(request, area)
        if isinstance(project, EmulatorResponse):
            return project
        ok, body = self._edge_json(request, area)
        if not ok:
            return body  # type: ignore[no-any-return]
        source = body.get("sourceUserUid") if isinstance(body, dict) else None
        target = body.get("targetUserUid") if isinstance(body, dict) else None
        if not (isinstance(source, str) and source and isinstance(target, str) and target):
            return error(
                400,
                f"personalize.{area}.INVALID_BODY",
                'The body must be {"sourceUserUid": "...", "targetUserUid": "..."}',
            )
        merged = project.users.setdefault(target, {})
        merged.update(project.users.get(source, {}))
        if self.merge_source == "delete" and source != target:
            project.users.pop(source, None)
            project.user_events.pop(source, None)
        return text_response(200, "User Attributes merged successfully")

    def _edge_events(self, request: EmulatorRequest) -> EmulatorResponse:
        area = "EVENTS"
        project = self._edge_project(request, area)
        if isinstance(project, EmulatorResponse):
            return project
        named = self._edge_user(request, area)
        if isinstance(named, EmulatorResponse):
            return named
        user, answer_headers = named
        ok, body = self._edge_json(request, area)
        if not ok:
            return body  # type: ignore[no-any-return]
        if not isinstance(body, list):
            return error(400, f"personalize.{area}.INVALID_BODY", "The body must be a JSON array")
        problems: list[str] = []
        unknown: list[str] = []
        known = project.event_keys() if self.unknown_event == "reject" else set()
        for i, event in enumerate(body):
            kind = event.get("type") if isinstance(event, dict) else None
            if kind == "IMPRESSION":
                if not (
                    isinstance(event.get("experienceShortUid"), str)
                    and isinstance(event.get("variantShortUid"), str)
                ):
                    problems.append(
                        f"[{i}]: IMPRESSION needs experienceShortUid and variantShortUid"
                    )
            elif kind == "EVENT":
                key = event.get("eventKey")
                if not isinstance(key, str) or not key:
                    problems.append(f"[{i}]: EVENT needs an eventKey")
                elif self.unknown_event == "reject" and key not in known:
                    unknown.append(key)
            else:
                problems.append(f"[{i}]: type must be IMPRESSION or EVENT")
        if problems and self.edge_validation == "strict":
            return error(400, f"personalize.{area}.INVALID_BODY", "; ".join(problems))
        if unknown:
            return error(
                400,
                f"personalize.{area}.EVENT_NOT_FOUND",
                f"Unknown event keys: {', '.join(sorted(set(unknown)))}",
                keys=sorted(set(unknown)),
            )
        project.users.setdefault(user, {})
        project.user_events.setdefault(user, []).extend(
            dict(e) if isinstance(e, dict) else e for e in body
        )
        return text_response(200, "Events added successfully", answer_headers)

    def _edge_manifest(self, request: EmulatorRequest) -> EmulatorResponse:
        area = "MANIFEST"
        project = self._edge_project(request, area)
        if isinstance(project, EmulatorResponse):
            return project
        tags = request.query_all("tags[]") + request.query_all("tags")
        if len(tags) > MAX_TAGS:
            return error(
                400,
                f"personalize.{area}.TOO_MANY_TAGS",
                f"At most {MAX_TAGS} tags, got {len(tags)}",
            )
        user: str = request.headers.get("x-cs-personalize-user-uid") or self.state.new_user_uid()
        project.users.setdefault(user, {})
        live = _live_attributes(request)
        # Tags match case-insensitively, any one of them (the JS SDK's documented semantics).
        wanted = {t.casefold() for t in tags}
        experiences = []
        for exp in project.experiences.values():
            if exp.get("status") != "ACTIVE":
                continue
            if wanted and not wanted & {str(t).casefold() for t in exp.get("tags", ())}:
                continue
            experiences.append(
                {
                    "shortUid": exp["shortUid"],
                    "activeVariantShortUid": self._variant(project, exp, user, live),
                }
            )
        return json_response(
            200, {"experiences": experiences}, (("x-cs-personalize-user-uid", user),)
        )

    def _variant(
        self, project: Project, exp: dict[str, Any], user: str, live: Mapping[str, Any]
    ) -> str | None:
        lenient = self.audience_matching == "lenient"
        ignore_case = self.string_case == "insensitive"
        variants: list[str] = [str(v["shortUid"]) for v in exp.get("variants", ())]
        if exp.get("__type") == "AB_TEST":
            if not variants:
                return None
            digest = hashlib.sha256(f"{exp['shortUid']}:{user}".encode()).digest()
            return variants[int.from_bytes(digest[:4], "big") % len(variants)]
        audiences = [
            project.audiences[a] for a in exp.get("_audiences") or () if a in project.audiences
        ]
        if exp.get("_audiences") and not any(
            in_audience(project, a, user, lenient, ignore_case, live) for a in audiences
        ):
            return None
        active = exp.get("activeVariantShortUid")
        return str(active) if isinstance(active, str) else None

    # ------------------------------------------------------------------------- management

    def handle_management(self, path: str, request: EmulatorRequest) -> EmulatorResponse:
        token = self._authenticate(request)
        if isinstance(token, EmulatorResponse):
            return token
        parts = [p for p in path.split("/") if p]
        if not parts:
            return unknown_route("management", request, path)
        resource = parts[0]
        if resource == "projects":
            return self._projects(request, token, parts[1:], path)
        if resource not in ("attributes", "audiences", "events", "experiences") or len(parts) > 2:
            return unknown_route("management", request, path)
        uid = request.headers.get("x-project-uid")
        project = self.state.projects.get(uid) if uid else None
        if project is None:
            return error(
                404,
                f"personalize.{resource.upper()}.PROJECT_NOT_FOUND",
                f"Project {uid} not found" if uid else "The x-project-uid header is missing",
            )
        denied = self._authorize(token, project.organization_uid)
        if denied is not None:
            return denied
        limited = self._rate_limit(project.organization_uid)
        if limited is not None:
            return limited
        item = parts[1] if len(parts) == 2 else None
        method = request.method
        collection: dict[str, dict[str, Any]] = getattr(project, resource)
        if item is None and method == "GET":
            return json_response(200, [public(o) for o in collection.values()])
        if item is not None and method == "GET" and resource == "experiences":
            found = collection.get(item)
            if found is None:
                return self._not_found(resource, item)
            return json_response(200, public(found))
        if item is None and method == "POST":
            return self._create(resource, project, request, token)
        if item is not None and method == "PUT":
            return self._update(resource, project, item, request, token)
        if item is not None and method == "DELETE":
            return self._delete(resource, project, item)
        return unknown_route("management", request, path)

    def _authenticate(self, request: EmulatorRequest) -> Token | EmulatorResponse:
        code = "personalize.AUTH.UNAUTHORIZED"
        authorization = request.headers.get("authorization")
        authtoken = request.headers.get("authtoken")
        if authorization:
            scheme, _, value = str(authorization).partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                return error(
                    401,
                    code,
                    "Management tokens are not supported by Personalize; authenticate with a "
                    "user authtoken (authtoken header) or an OAuth user token "
                    "(authorization: Bearer <token>)",
                )
            return self._known_token(value.strip(), "oauth")
        if authtoken:
            return self._known_token(str(authtoken), "authtoken")
        return error(
            401,
            code,
            "Authentication required: send an authtoken header or authorization: Bearer <token>",
        )

    def _known_token(self, value: str, kind: str) -> Token | EmulatorResponse:
        token = self.state.tokens.get(value)
        if token is None or token.kind != kind:
            return error(401, "personalize.AUTH.UNAUTHORIZED", "The token is invalid or revoked")
        if token.expires_at is not None and self.clock() >= token.expires_at:
            return error(401, "personalize.AUTH.UNAUTHORIZED", "The token has expired")
        return token

    @staticmethod
    def _authorize(token: Token, organization_uid: str) -> EmulatorResponse | None:
        if token.organization_uid is not None and token.organization_uid != organization_uid:
            return error(
                403,
                "personalize.AUTH.FORBIDDEN",
                f"The token has no access to organization {organization_uid}",
            )
        return None

    def _rate_limit(self, organization_uid: str) -> EmulatorResponse | None:
        limit = self.management_rate_limit
        if limit is None:
            return None
        window = self.state.organizations[organization_uid].window
        now = self.clock()
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= limit:
            wait = max(1, math.ceil(window[0] + 1.0 - now))
            return json_response(
                429,
                {
                    "error": "personalize.TOO_MANY_REQUESTS",
                    "message": f"Rate limit of {limit:g} requests per second per organization "
                    "exceeded",
                },
                (("retry-after", str(wait)),) if self.retry_after_header else (),
            )
        window.append(now)
        return None

    @staticmethod
    def _not_found(resource: str, uid: str) -> EmulatorResponse:
        return error(
            404, f"personalize.{resource.upper()}.NOT_FOUND", f"No {resource[:-1]} with uid {uid}"
        )

    def _body(self, request: EmulatorRequest) -> dict[str, Any] | EmulatorResponse:
        if self.content_type == "json" and not _is_json(request):
            return error(
                400,
                "personalize.INVALID_CONTENT_TYPE",
                "Send the body as JSON with content-type: application/json",
            )
        ok, body = _parse_json(request.body)
        if not ok or not isinstance(body, dict):
            return error(400, "personalize.INVALID_BODY", "The body must be a JSON object")
        return body

    def _create(
        self, resource: str, project: Project, request: EmulatorRequest, token: Token
    ) -> EmulatorResponse:
        body = self._body(request)
        if isinstance(body, EmulatorResponse):
            return body
        return self.create(resource, project, body, token.user_uid)

    def create(
        self, resource: str, project: Project, body: dict[str, Any], user_uid: str
    ) -> EmulatorResponse:
        """Create one catalogue object (also used by the seeding helpers)."""
        collection: dict[str, dict[str, Any]] = getattr(project, resource)
        check = self._validate(resource, project, body, None)
        if check is not None:
            return check
        count = sum(1 for o in collection.values() if o.get("__type") != "PRESET")
        limit = self.attribute_limit if resource == "attributes" else LIMITS[resource]
        capped = resource == "attributes" or self.management_validation == "strict"
        if capped and count >= limit:
            return error(
                400,
                f"personalize.{resource.upper()}.LIMIT_EXCEEDED",
                f"A project holds at most {limit} {resource}",
            )
        now = now_iso()
        obj: dict[str, Any] = {"uid": self.state.new_uid()}
        if resource == "attributes":
            obj.update(
                name=body["name"], key=body["key"], description=body.get("description") or ""
            )
        elif resource == "audiences":
            obj.update(
                name=body["name"],
                description=body.get("description") or "",
                definition=body["definition"],
            )
        elif resource == "events":
            obj.update(key=body["key"], description=body.get("description") or "")
        else:
            obj.update(
                name=body["name"],
                description=body.get("description") or "",
                shortUid=project.take_short_uid(),
                status="DRAFT",
                tags=[],
                variants=[],
                activeVariantShortUid=None,
            )
            obj["__type"] = body.get("__type") or "SEGMENTED"
        obj.update(
            project=project.uid,
            createdAt=now,
            createdBy=user_uid,
            updatedAt=now,
            updatedBy=user_uid,
        )
        if resource == "attributes":
            obj["__type"] = "CUSTOM"
        collection[obj["uid"]] = obj
        return json_response(201, public(obj))

    def _update(
        self, resource: str, project: Project, uid: str, request: EmulatorRequest, token: Token
    ) -> EmulatorResponse:
        collection: dict[str, dict[str, Any]] = getattr(project, resource)
        obj = collection.get(uid)
        if obj is None:
            return self._not_found(resource, uid)
        if obj.get("__type") == "PRESET":
            return error(
                400,
                "personalize.ATTRIBUTES.PRESET_READ_ONLY",
                "Preset attributes cannot be changed",
            )
        if obj.get("source") == "LYTICS":
            return error(
                400,
                "personalize.AUDIENCES.READ_ONLY",
                "Audiences synced from Lytics cannot be changed through the API",
            )
        body = self._body(request)
        if isinstance(body, EmulatorResponse):
            return body
        merged = {**obj, **{k: v for k, v in body.items() if k in _EDITABLE[resource]}}
        check = self._validate(resource, project, merged, uid)
        if check is not None:
            return check
        obj.update({k: v for k, v in body.items() if k in _EDITABLE[resource]})
        if "description" in body and obj["description"] is None:
            obj["description"] = ""
        obj.update(updatedAt=now_iso(), updatedBy=token.user_uid)
        return json_response(200, public(obj))

    def _delete(self, resource: str, project: Project, uid: str) -> EmulatorResponse:
        collection: dict[str, dict[str, Any]] = getattr(project, resource)
        obj = collection.get(uid)
        if obj is None:
            return self._not_found(resource, uid)
        if obj.get("__type") == "PRESET":
            return error(
                400,
                "personalize.ATTRIBUTES.PRESET_READ_ONLY",
                "Preset attributes cannot be deleted",
            )
        del collection[uid]
        return no_content()

    def _validate(
        self, resource: str, project: Project, body: Mapping[str, Any], uid: str | None
    ) -> EmulatorResponse | None:
        errors: dict[str, list[str]] = {}
        others = [o for o in getattr(project, resource).values() if o["uid"] != uid]
        if resource in ("attributes", "audiences", "experiences"):
            name = body.get("name")
            if not isinstance(name, str) or not name.strip():
                errors["name"] = ["name is required"]
        description = body.get("description")
        if description is not None and not isinstance(description, str):
            errors["description"] = ["description must be a string"]
        if resource in ("attributes", "events"):
            key = body.get("key")
            pattern = ATTRIBUTE_KEY_RE if resource == "attributes" else EVENT_KEY_RE
            strict = self.management_validation == "strict"
            if not isinstance(key, str) or not key:
                errors["key"] = ["key is required"]
            elif strict and not pattern.match(key):
                errors["key"] = [f"key must match {pattern.pattern}"]
            elif strict and resource == "attributes" and key.upper() in PRESET_ATTRIBUTES:
                errors["key"] = [f"key {key!r} is reserved for a preset attribute"]
            if errors:
                return field_errors(errors)
            if any(o["key"] == key for o in others):
                return error(
                    409,
                    f"personalize.{resource.upper()}.DUPLICATE_KEY",
                    f"A{'n attribute' if resource == 'attributes' else 'n event'} with key "
                    f"{key!r} already exists",
                )
            return None
        if resource == "audiences":
            if body.get("source") is not None and uid is None:
                errors["source"] = ["audiences from an external source cannot be created"]
            if "definition" not in body:
                errors["definition"] = ["definition is required"]
            else:
                problems = validate_definition(
                    body["definition"],
                    project,
                    strict=self.management_validation == "strict",
                )
                if problems:
                    errors["definition"] = problems
            if errors:
                return field_errors(errors)
            if any(o["name"] == body["name"] for o in others):
                return error(
                    409,
                    "personalize.AUDIENCES.DUPLICATE_NAME",
                    f"An audience named {body['name']!r} already exists",
                )
            return None
        kind = body.get("__type")
        if kind is not None and kind not in ("SEGMENTED", "AB_TEST"):
            errors["__type"] = ["__type must be SEGMENTED or AB_TEST"]
        return field_errors(errors) if errors else None

    def _projects(
        self, request: EmulatorRequest, token: Token, rest: list[str], path: str
    ) -> EmulatorResponse:
        org_uid = request.headers.get("organization_uid") or token.organization_uid
        if not org_uid:
            return error(
                400,
                "personalize.PROJECTS.ORGANIZATION_REQUIRED",
                "Send the organization_uid header",
            )
        org = self.state.organizations.get(org_uid)
        if org is None:
            return error(
                404, "personalize.ORGANIZATIONS.NOT_FOUND", f"Organization {org_uid} not found"
            )
        denied = self._authorize(token, org.uid)
        if denied is not None:
            return denied
        limited = self._rate_limit(org.uid)
        if limited is not None:
            return limited
        projects = [p for p in self.state.projects.values() if p.organization_uid == org.uid]
        if not rest and request.method == "GET":
            return json_response(200, [p.to_api() for p in projects])
        if len(rest) == 1 and request.method == "GET":
            for p in projects:
                if p.uid == rest[0]:
                    return json_response(200, p.to_api())
            return error(404, "personalize.PROJECTS.NOT_FOUND", f"No project with uid {rest[0]}")
        if not rest and request.method == "POST":
            body = self._body(request)
            if isinstance(body, EmulatorResponse):
                return body
            name = body.get("name")
            if not isinstance(name, str) or not name.strip():
                return field_errors({"name": ["name is required"]})
            description = body.get("description") or ""
            if not isinstance(description, str):
                return field_errors({"description": ["description must be a string"]})
            if any(p.name == name for p in projects):
                return error(
                    409,
                    "personalize.PROJECTS.DUPLICATE_NAME",
                    f"A project named {name!r} already exists in this organization",
                )
            if self.management_validation == "strict" and len(projects) >= MAX_PROJECTS:
                return error(
                    400,
                    "personalize.PROJECTS.LIMIT_EXCEEDED",
                    f"An organization holds at most {MAX_PROJECTS} projects",
                )
            project = self.state.add_project(org.uid, name, description, token.user_uid)
            return json_response(201, project.to_api())
        return unknown_route("management", request, path)

    # ------------------------------------------------------------------------- CMA

    def handle_cma(self, path: str, request: EmulatorRequest) -> EmulatorResponse:
        if path != "/v3/user-session":
            return json_response(
                404,
                {
                    "error_message": "The requested URL was not found",
                    "error_code": 404,
                    "errors": {},
                },
            )
        if request.method == "POST":
            return self._login(request)
        if request.method == "DELETE":
            value = request.headers.get("authtoken")
            token = self.state.tokens.get(value) if value else None
            if token is None or token.kind != "authtoken":
                return json_response(
                    401,
                    {
                        "error_message": "The provided access token is invalid or expired or "
                        "revoked",
                        "error_code": 105,
                        "errors": {},
                    },
                )
            del self.state.tokens[value]
            for login in self.state.logins.values():
                if value in login.tokens:
                    login.tokens.remove(value)
            return json_response(200, {"notice": "You've logged out successfully."})
        return json_response(
            405, {"error_message": "Method not allowed", "error_code": 405, "errors": {}}
        )

    def _login(self, request: EmulatorRequest) -> EmulatorResponse:
        ok, body = _parse_json(request.body)
        user = body.get("user") if ok and isinstance(body, dict) else None
        email = user.get("email") if isinstance(user, dict) else None
        password = user.get("password") if isinstance(user, dict) else None
        if not isinstance(email, str) or not isinstance(password, str):
            return json_response(
                422,
                {
                    "error_message": "Please provide email and password.",
                    "error_code": 104,
                    "errors": {},
                },
            )
        login: Login | None = self.state.logins.get(email.lower())
        if login is None or login.password != password:
            return json_response(
                422,
                {
                    "error_message": "Looks like your email or password is invalid. Please try "
                    "again or reset your password.",
                    "error_code": 104,
                    "errors": {},
                },
            )
        assert isinstance(user, dict)
        if login.tfa_token is not None:
            tfa = user.get("tfa_token")
            if not tfa:
                return json_response(
                    294,
                    {
                        "error_message": "Please login using the Two-Factor verification Token",
                        "error_code": 294,
                        "errors": [],
                    },
                )
            if tfa != login.tfa_token:
                return json_response(
                    422,
                    {
                        "error_message": "Looks like your Two-Factor verification token is "
                        "invalid. Please try again.",
                        "error_code": 104,
                        "errors": {},
                    },
                )
        authtoken = self.state.new_token("blt")
        self.state.tokens[authtoken] = Token(
            kind="authtoken", organization_uid=login.organization_uid, user_uid=login.user_uid
        )
        login.tokens.append(authtoken)
        while len(login.tokens) > MAX_AUTHTOKENS_PER_USER:
            self.state.tokens.pop(login.tokens.popleft(), None)
        orgs = [
            {"uid": o.uid, "name": o.name}
            for o in self.state.organizations.values()
            if login.organization_uid in (None, o.uid)
        ]
        return json_response(
            200,
            {
                "notice": "Login Successful.",
                "user": {
                    "uid": login.user_uid,
                    "email": login.email,
                    "username": login.email.split("@")[0],
                    "authtoken": authtoken,
                    "organizations": orgs,
                },
            },
        )

    # ------------------------------------------------------------------------- Developer Hub

    def handle_developerhub(self, path: str, request: EmulatorRequest) -> EmulatorResponse:
        if path != "/token" or request.method != "POST":
            return json_response(
                404, {"error": "not_found", "message": f"Cannot {request.method} {path}"}
            )
        if _is_json(request):
            ok, body = _parse_json(request.body)
            form = (
                {str(k): str(v) for k, v in body.items()} if ok and isinstance(body, dict) else {}
            )
        else:
            form = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        grant = form.get("grant_type")
        if grant == "authorization_code":
            return self._exchange_code(form)
        if grant == "refresh_token":
            return self._refresh(form)
        return _oauth_error(400, "unsupported_grant_type", f"grant_type {grant!r} is not supported")

    def _exchange_code(self, form: Mapping[str, str]) -> EmulatorResponse:
        code = self.state.oauth_codes.get(form.get("code", ""))
        if code is None:
            return _oauth_error(400, "invalid_grant", "The authorization code is invalid or used")
        if code.client_id is not None and form.get("client_id") != code.client_id:
            return _oauth_error(401, "invalid_client", "Unknown client_id")
        if code.redirect_uri is not None and form.get("redirect_uri") != code.redirect_uri:
            return _oauth_error(400, "invalid_grant", "redirect_uri does not match")
        if code.code_verifier is not None:
            if form.get("code_verifier") != code.code_verifier:
                return _oauth_error(400, "invalid_grant", "code_verifier does not match")
        elif code.client_secret is not None and form.get("client_secret") != code.client_secret:
            return _oauth_error(401, "invalid_client", "client_secret does not match")
        del self.state.oauth_codes[code.code]
        self.code_exchanges += 1
        return self._issue(code.organization_uid, code.user_uid, code.client_id)

    def _refresh(self, form: Mapping[str, str]) -> EmulatorResponse:
        value = form.get("refresh_token", "")
        if self.refresh_token_rotation:
            refresh = self.state.refresh_tokens.pop(value, None)
        else:
            refresh = self.state.refresh_tokens.get(value)
        if refresh is None:
            return _oauth_error(400, "invalid_grant", "The refresh token is invalid or expired")
        self.token_refreshes += 1
        return self._issue(refresh.organization_uid, refresh.user_uid, refresh.client_id)

    def _issue(
        self, organization_uid: str, user_uid: str, client_id: str | None
    ) -> EmulatorResponse:
        access = self.state.new_token("cs")
        refresh = self.state.new_token("csr")
        self.state.tokens[access] = Token(
            kind="oauth",
            organization_uid=organization_uid,
            user_uid=user_uid,
            expires_at=self.clock() + self.oauth_expires_in,
        )
        self.state.refresh_tokens[refresh] = RefreshToken(organization_uid, user_uid, client_id)
        return json_response(
            200,
            {
                "access_token": access,
                "refresh_token": refresh,
                "token_type": "Bearer",
                "expires_in": self.oauth_expires_in,
                "organization_uid": organization_uid,
                "user_uid": user_uid,
                "authorization_type": "user",
            },
        )


_EDITABLE = {
    "attributes": frozenset({"name", "key", "description"}),
    "audiences": frozenset({"name", "description", "definition"}),
    "events": frozenset({"key", "description"}),
    "experiences": frozenset({"name", "description"}),
}


def _oauth_error(status: int, code: str, description: str) -> EmulatorResponse:
    return json_response(
        status, {"error": code, "error_description": description, "message": description}
    )
