"""Inspection and control over HTTP, for tests in another process or another language.

Every path starts with ``/_emulator``: no Personalize API has a path starting with an
underscore, so the prefix cannot collide with a real endpoint on any host. Control requests
are never subject to faults and never appear in the request log. Answers are JSON; errors are
``{"error": "emulator.<CODE>", "message": "..."}``. ``?project_uid=`` picks a project (default
the emulator's first one).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ._app import error, json_response, no_content
from ._faults import Faults
from ._http import EmulatorRequest, EmulatorResponse

if TYPE_CHECKING:
    from ._emulator import PersonalizeEmulator, RecordedRequest

__all__ = ["CONTROL_PREFIX", "faults_from_json", "faults_to_json", "handle_control"]

#: The path prefix of the inspection and control endpoints.
CONTROL_PREFIX = "/_emulator"

_ENDPOINTS = (
    "GET /_emulator",
    "GET /_emulator/users",
    "GET|PUT|DELETE /_emulator/users/{uid}",
    "GET /_emulator/events",
    "GET /_emulator/audiences/{audience}/members",
    "GET /_emulator/audiences/{audience}/members/{uid}",
    "GET /_emulator/requests",
    "POST /_emulator/reset",
    "GET|PUT|DELETE /_emulator/faults",
    "POST /_emulator/attributes|events|audiences|lytics-audiences|experiences",
)


def is_control(path: str) -> bool:
    """Whether a request path is for the control endpoints."""
    return path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/")


def faults_to_json(faults: Faults | None) -> dict[str, Any] | None:
    """A ``Faults`` as JSON-ready data (``apply_to`` sorted, ``fail_nth`` keys as text)."""
    if faults is None:
        return None
    data = dataclasses.asdict(faults)
    data["apply_to"] = sorted(faults.apply_to)
    data["fail_nth"] = {str(n): failure for n, failure in sorted(faults.fail_nth.items())}
    return data


def faults_from_json(data: Any) -> Faults:
    """The inverse of ``faults_to_json``; raises ``ValueError`` with a readable message."""
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object of Faults options")
    names = {f.name for f in dataclasses.fields(Faults)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown Faults options {unknown}; use any of {sorted(names)}")
    options = dict(data)
    fail_nth = options.get("fail_nth")
    if fail_nth is not None:
        if not isinstance(fail_nth, dict):
            raise ValueError('fail_nth must be an object like {"1": 503, "2": "timeout"}')
        try:
            options["fail_nth"] = {int(n): failure for n, failure in fail_nth.items()}
        except ValueError:
            raise ValueError("fail_nth keys must be request numbers") from None
    try:
        return Faults(**options)
    except TypeError as exc:
        raise ValueError(str(exc)) from None


def _request_to_json(record: RecordedRequest) -> dict[str, Any]:
    return {
        "api": record.api,
        "method": record.method,
        "path": record.path,
        "query": [list(pair) for pair in record.query],
        "status": record.status,
        "user_uid": record.user_uid,
        "project_uid": record.project_uid,
        "body": record.body.decode("utf-8", "replace"),
        "json": record.json,
        "fault": record.fault,
        "applied": record.applied,
    }


def _bad(message: str) -> EmulatorResponse:
    return error(400, "emulator.BAD_REQUEST", message)


def _body(request: EmulatorRequest) -> Any:
    if not request.body:
        return {}
    try:
        return json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("the body is not valid JSON") from None


def _call(method: Callable[..., Any], args: Any, **fixed: Any) -> Any:
    """Call a seeding helper with JSON arguments, refusing names it does not take."""
    if not isinstance(args, Mapping):
        raise ValueError("the body must be a JSON object of arguments")
    params = inspect.signature(method).parameters
    unknown = sorted(k for k in args if k not in params or k in fixed)
    if unknown:
        allowed = sorted(k for k in params if k not in fixed)
        raise ValueError(f"unknown arguments {unknown}; use any of {allowed}")
    return method(**args, **fixed)


def handle_control(emulator: PersonalizeEmulator, request: EmulatorRequest) -> EmulatorResponse:
    """Answer one ``/_emulator`` request."""
    parts = [p for p in request.path[len(CONTROL_PREFIX) :].split("/") if p]
    project = next((v for k, v in request.query if k == "project_uid"), None) or None
    try:
        return _dispatch(emulator, request, parts, project)
    except KeyError as exc:
        message = exc.args[0] if exc.args else str(exc)
        return error(404, "emulator.NOT_FOUND", str(message))
    except (ValueError, TypeError) as exc:
        return _bad(str(exc))


def _dispatch(
    emulator: PersonalizeEmulator,
    request: EmulatorRequest,
    parts: list[str],
    project: str | None,
) -> EmulatorResponse:
    method = request.method
    if not parts and method == "GET":
        return json_response(200, emulator.describe())
    head = parts[0] if parts else ""
    if head == "users":
        if len(parts) == 1 and method == "GET":
            return json_response(
                200,
                {
                    "project_uid": project or emulator.project_uid,
                    "users": emulator.users(project),
                },
            )
        if len(parts) == 2:
            uid = parts[1]
            if method == "PUT":
                attributes = _body(request)
                if not isinstance(attributes, dict):
                    raise ValueError("the body must be a JSON object of attributes")
                emulator.add_user(uid, attributes, project_uid=project)
            elif method == "DELETE":
                emulator.remove_user(uid, project_uid=project)
                return no_content()
            elif method != "GET":
                return _unknown(request)
            users = emulator.users(project)
            if uid not in users:
                raise KeyError(f"the project has no user {uid!r}")
            return json_response(
                200,
                {
                    "uid": uid,
                    "attributes": users[uid],
                    "events": emulator.events_of(uid, project),
                },
            )
    if head == "events" and len(parts) == 1 and method == "GET":
        return json_response(
            200,
            {
                "project_uid": project or emulator.project_uid,
                "events": emulator.all_events(project),
            },
        )
    if head == "events" and len(parts) == 1 and method == "POST":
        return json_response(201, _call(emulator.add_event, _body(request), project_uid=project))
    if head == "audiences" and len(parts) >= 3 and parts[2] == "members" and method == "GET":
        audience = parts[1]
        if len(parts) == 3:
            members = emulator.audience_members(audience, project_uid=project)
            return json_response(200, {"audience": audience, "members": members})
        if len(parts) == 4:
            member = emulator.in_audience(audience, parts[3], project_uid=project)
            return json_response(
                200, {"audience": audience, "user_uid": parts[3], "member": member}
            )
    if head == "requests" and len(parts) == 1 and method == "GET":
        return json_response(
            200,
            {
                "recording": emulator.record_requests,
                "requests": [_request_to_json(r) for r in emulator.requests],
            },
        )
    if head == "reset" and len(parts) == 1 and method == "POST":
        emulator.reset()
        return no_content()
    if head == "faults" and len(parts) == 1:
        if method == "GET":
            return json_response(200, {"faults": faults_to_json(emulator.faults)})
        if method == "PUT":
            emulator.faults = faults_from_json(_body(request))
            return json_response(200, {"faults": faults_to_json(emulator.faults)})
        if method == "DELETE":
            emulator.clear_faults()
            return no_content()
    if len(parts) == 1 and method == "POST":
        seeders: dict[str, Callable[..., Any]] = {
            "attributes": emulator.add_attribute,
            "audiences": emulator.add_audience,
            "lytics-audiences": emulator.add_lytics_audience,
            "experiences": emulator.add_experience,
        }
        seeder = seeders.get(head)
        if seeder is not None:
            return json_response(201, _call(seeder, _body(request), project_uid=project))
    return _unknown(request)


def _unknown(request: EmulatorRequest) -> EmulatorResponse:
    return error(
        404,
        "emulator.UNKNOWN_CONTROL",
        f"no control endpoint {request.method} {request.path}; the endpoints are: "
        + "; ".join(_ENDPOINTS),
    )
