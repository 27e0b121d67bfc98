"""The emulator's in-memory data model: organizations, projects and what they hold, users,
tokens and logins. Plain mutable containers; all locking is done by the emulator.
"""

from __future__ import annotations

import dataclasses
import datetime
import random
import uuid
from collections import deque
from typing import Any

__all__ = [
    "PRESET_ATTRIBUTES",
    "Login",
    "OAuthCode",
    "Organization",
    "Project",
    "RefreshToken",
    "State",
    "Token",
    "now_iso",
]

#: Preset attributes every project has, by reference name (the name is also their uid and key).
PRESET_ATTRIBUTES: dict[str, str] = {
    "COUNTRY": "Country",
    "REGION": "Region",
    "CITY": "City",
    "DEVICE_TYPE": "Device Type",
    "OPERATING_SYSTEM": "Operating System",
    "BROWSER": "Browser",
    "REFERRER": "Referrer",
    "QUERY_PARAMETER": "Query Parameter",
    "LANDING_PAGE": "Landing Page",
    "DAY_OF_WEEK": "Day of Week",
    "TIME_OF_DAY": "Time of Day",
}

_EPOCH = "2024-01-01T00:00:00.000Z"


def now_iso() -> str:
    """The current UTC time the way Personalize writes it (``2024-05-01T10:00:00.000Z``)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


@dataclasses.dataclass
class Organization:
    uid: str
    name: str
    # Accepted management requests of the last second (monotonic clock), for the rate limit.
    window: deque[float] = dataclasses.field(default_factory=deque)


@dataclasses.dataclass
class Project:
    uid: str
    organization_uid: str
    name: str
    description: str
    created_at: str
    created_by: str
    # Catalogue (Management API), each keyed by uid, in creation order.
    attributes: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    audiences: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    events: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    experiences: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    # Edge data.
    users: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    user_events: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)
    next_short_uid: int = 0

    def to_api(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "name": self.name,
            "description": self.description,
            "organization": self.organization_uid,
            "createdAt": self.created_at,
            "createdBy": self.created_by,
            "updatedAt": self.created_at,
            "updatedBy": self.created_by,
        }

    def custom_attribute_keys(self) -> set[str]:
        return {a["key"] for a in self.attributes.values() if a["__type"] == "CUSTOM"}

    def event_keys(self) -> set[str]:
        return {e["key"] for e in self.events.values()}

    def take_short_uid(self) -> str:
        """Next experience short uid: a, b, ..., z, ba, bb... (base 26, like the real ones)."""
        n = self.next_short_uid
        self.next_short_uid += 1
        letters = ""
        while True:
            n, r = divmod(n, 26)
            letters = chr(ord("a") + r) + letters
            if n == 0:
                return letters


@dataclasses.dataclass
class Token:
    """A credential the Management API accepts."""

    kind: str  # "authtoken" or "oauth"
    organization_uid: str | None  # None: every organization
    user_uid: str
    expires_at: float | None = None  # emulator clock; None: never


@dataclasses.dataclass
class Login:
    email: str
    password: str
    tfa_token: str | None
    user_uid: str
    organization_uid: str | None
    tokens: deque[str] = dataclasses.field(default_factory=deque)


@dataclasses.dataclass
class OAuthCode:
    code: str
    code_verifier: str | None
    client_id: str | None
    client_secret: str | None
    redirect_uri: str | None
    organization_uid: str
    user_uid: str


@dataclasses.dataclass
class RefreshToken:
    organization_uid: str
    user_uid: str
    client_id: str | None


class State:
    """Everything the emulator knows. ``ids`` makes uids deterministic from the seed."""

    def __init__(self, seed: int) -> None:
        self.ids = random.Random(seed)
        self.organizations: dict[str, Organization] = {}
        self.projects: dict[str, Project] = {}
        self.tokens: dict[str, Token] = {}
        self.logins: dict[str, Login] = {}
        self.oauth_codes: dict[str, OAuthCode] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}

    def new_uid(self) -> str:
        """A 24-hex ObjectId-like uid."""
        return f"{self.ids.getrandbits(96):024x}"

    def new_token(self, prefix: str) -> str:
        return f"{prefix}{self.ids.getrandbits(128):032x}"

    def new_user_uid(self) -> str:
        """A UUID4 like the ones the edge generates for anonymous users."""
        return str(uuid.UUID(int=self.ids.getrandbits(128), version=4))

    def add_organization(self, name: str, uid: str | None = None) -> Organization:
        generated = self.new_uid()  # drawn even when uid is given: later uids stay the same
        org = Organization(uid=uid or generated, name=name)
        self.organizations[org.uid] = org
        return org

    def add_project(
        self,
        organization_uid: str,
        name: str,
        description: str = "",
        created_by: str = "",
        uid: str | None = None,
    ) -> Project:
        generated = self.new_uid()
        project = Project(
            uid=uid or generated,
            organization_uid=organization_uid,
            name=name,
            description=description,
            created_at=now_iso(),
            created_by=created_by,
        )
        for ref, label in PRESET_ATTRIBUTES.items():
            project.attributes[ref] = {
                "uid": ref,
                "name": label,
                "key": ref,
                "description": "",
                "project": project.uid,
                "createdAt": _EPOCH,
                "createdBy": "",
                "updatedAt": _EPOCH,
                "updatedBy": "",
                "__type": "PRESET",
            }
        self.projects[project.uid] = project
        return project
