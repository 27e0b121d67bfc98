"""An in-memory Contentstack Personalize for tests, examples and benchmarks.

``PersonalizeEmulator`` answers the Edge API, the Management API, the CMA login endpoint and
the Developer Hub OAuth token endpoint from memory, like moto does for AWS::

    from contentstack_personalize.testing import PersonalizeEmulator

    emulator = PersonalizeEmulator()
    with httpx.Client(transport=emulator.transport()) as http:
        http.patch(
            "https://personalize-edge.contentstack.com/user-attributes",
            headers={"x-project-uid": emulator.project_uid, "x-cs-personalize-user-uid": "u1"},
            json={"plan": "gold"},
        )
    assert emulator.user_attributes("u1") == {"plan": "gold"}

``emulator.serve()`` runs it as a real HTTP server; ``Faults`` injects latency, errors,
timeouts and dropped connections; the pytest fixture ``personalize_emulator`` gives each
test a fresh one; ``python -m contentstack_personalize.testing`` serves it from a shell.
``emulator.in_audience(audience, user_uid)`` and ``emulator.audience_members(audience)``
answer membership with the manifest's rule engine (strictly typed unless
``audience_matching="lenient"``); a server in another process is read and driven through
its ``/_emulator`` endpoints (``GET /_emulator/users``, ``PUT /_emulator/faults``...).
"""

from ._emulator import PersonalizeEmulator, RecordedRequest
from ._faults import Faults
from ._http import EmulatorRequest, EmulatorResponse
from ._server import EmulatorServer
from ._state import PRESET_ATTRIBUTES
from ._transport import EmulatorTransport

__all__ = [
    "EmulatorRequest",
    "EmulatorResponse",
    "EmulatorServer",
    "EmulatorTransport",
    "Faults",
    "PRESET_ATTRIBUTES",
    "PersonalizeEmulator",
    "RecordedRequest",
]
