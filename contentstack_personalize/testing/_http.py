"""The emulator's own request and response values, independent of any HTTP library.

``EmulatorRequest`` is what the transports and the socket server hand to the core;
``EmulatorResponse`` is what they get back (an answer, or the instruction to fail without one).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["EmulatorRequest", "EmulatorResponse", "Headers"]


class Headers(Mapping[str, str]):
    """Read-only, case-insensitive headers. Repeated headers are joined with ``", "``."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        data: dict[str, str] = {}
        for name, value in pairs:
            key = name.lower()
            data[key] = f"{data[key]}, {value}" if key in data else value
        self._items = data

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def get(self, name: str, default: Any = None) -> Any:
        return self._items.get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


@dataclasses.dataclass(frozen=True, slots=True)
class EmulatorRequest:
    """One HTTP request as the emulator sees it.

    ``query`` keeps repeated parameters in order (``tags[]=a&tags[]=b``); ``path`` is
    percent-decoded and carries no query string.

    Example::

        request = EmulatorRequest.build("GET", "/edge/manifest?tags[]=a&tags[]=b")
        request.query_all("tags[]")  # ['a', 'b']
        response = emulator.handle(request)
    """

    method: str
    host: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    headers: Headers = dataclasses.field(default_factory=Headers)
    body: bytes = b""

    @classmethod
    def build(
        cls,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        json_body: Any = None,
    ) -> EmulatorRequest:
        """Build a request from a full URL (``https://personalize-edge.../manifest?tags[]=x``)
        or a path with query (``/edge/manifest``). ``json_body`` sets the body and content type.
        """
        parts = urlsplit(url)
        hdrs = list(headers.items() if isinstance(headers, Mapping) else headers)
        if json_body is not None:
            body = json.dumps(json_body).encode()
            hdrs.append(("content-type", "application/json"))
        h = Headers(hdrs)
        host = parts.hostname or h.get("host", "") or ""
        return cls(
            method=method.upper(),
            host=host.lower(),
            path=unquote(parts.path) or "/",
            query=tuple(parse_qsl(parts.query, keep_blank_values=True)),
            headers=h,
            body=body,
        )

    def query_all(self, name: str) -> list[str]:
        """Every value of a query parameter, in order."""
        return [v for k, v in self.query if k == name]


@dataclasses.dataclass(frozen=True, slots=True)
class EmulatorResponse:
    """The emulator's answer.

    When ``failure`` is ``"timeout"`` or ``"drop"`` there is no answer: the shell raises (the
    httpx transports) or closes the connection (the socket server) after ``delay`` seconds
    (the server holds a timed-out connection ``hold`` seconds). ``status``, ``headers`` and
    ``body`` are then meaningless.

    Example::

        response = emulator.request("GET", "/edge/manifest",
                                    headers={"x-project-uid": emulator.project_uid})
        assert response.status == 200 and "experiences" in response.json()
    """

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    delay: float = 0.0
    failure: Literal["timeout", "drop"] | None = None
    hold: float = 0.0

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.body.decode("utf-8", "replace")

    def header(self, name: str) -> str | None:
        """The first value of a header, case-insensitively."""
        lname = name.lower()
        for k, v in self.headers:
            if k.lower() == lname:
                return v
        return None
