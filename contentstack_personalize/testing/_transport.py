"""httpx transports over the emulator: no sockets, the request goes straight to
``PersonalizeEmulator.handle``. One class serves ``httpx.Client`` and ``httpx.AsyncClient``.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import httpx

from ._http import EmulatorRequest, EmulatorResponse, Headers

if TYPE_CHECKING:
    from ._emulator import PersonalizeEmulator

__all__ = ["EmulatorTransport"]


class EmulatorTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """An httpx transport answering from a ``PersonalizeEmulator``.

    Works as ``httpx.Client(transport=t)`` and ``httpx.AsyncClient(transport=t)``. Any host
    works: real Personalize host names are routed by name, anything else by a path prefix
    (``http://emulator/edge/manifest``). Injected latency sleeps (``time.sleep`` or
    ``asyncio.sleep``); an injected timeout raises ``httpx.ReadTimeout`` and a dropped
    connection ``httpx.RemoteProtocolError``, both after the latency.
    """

    def __init__(self, emulator: PersonalizeEmulator) -> None:
        self.emulator = emulator

    @staticmethod
    def _to_emulator(request: httpx.Request, body: bytes) -> EmulatorRequest:
        url = request.url
        return EmulatorRequest(
            method=request.method,
            host=url.host,
            path=url.path,
            query=tuple(url.params.multi_items()),
            headers=Headers(request.headers.multi_items()),
            body=body,
        )

    @staticmethod
    def _to_httpx(request: httpx.Request, response: EmulatorResponse) -> httpx.Response:
        if response.failure == "timeout":
            raise httpx.ReadTimeout("emulator: injected read timeout", request=request)
        if response.failure == "drop":
            raise httpx.RemoteProtocolError(
                "emulator: server disconnected without sending a response", request=request
            )
        return httpx.Response(
            response.status,
            headers=list(response.headers),
            content=response.body,
            request=request,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Answer a blocking httpx request from the emulator."""
        body = request.read()
        response = self.emulator.handle(self._to_emulator(request, body))
        if response.delay:
            time.sleep(response.delay)
        return self._to_httpx(request, response)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer an async httpx request from the emulator."""
        body = await request.aread()
        response = self.emulator.handle(self._to_emulator(request, body))
        if response.delay:
            await asyncio.sleep(response.delay)
        return self._to_httpx(request, response)
