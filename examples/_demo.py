"""Shared by the examples, not an example itself: where an example's client points.

Every example is written the way production code is: ``PersonalizeClient()`` reads the project,
the credentials and (optionally) the base URLs from the environment. Run as a demo (the
default), :func:`personalize_environment` serves the bundled emulator on 127.0.0.1 and points
those variables at it, so nothing needs credentials or network. With ``--real`` it leaves the
environment alone and checks that a project is configured.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

from contentstack_personalize.testing import PersonalizeEmulator

#: Every variable the client reads; a demo clears those it does not set, so a developer's own
#: credentials in the shell never leak into an emulated run (or the other way round).
CLIENT_VARIABLES = (
    "CONTENTSTACK_PERSONALIZE_PROJECT_UID",
    "CONTENTSTACK_PERSONALIZE_EDGE_URL",
    "CONTENTSTACK_PERSONALIZE_MANAGEMENT_URL",
    "CONTENTSTACK_CMA_URL",
    "CONTENTSTACK_REGION",
    "CONTENTSTACK_ORGANIZATION_UID",
    "CONTENTSTACK_AUTHTOKEN",
    "CONTENTSTACK_MANAGEMENT_TOKEN",
    "CONTENTSTACK_OAUTH_ACCESS_TOKEN",
    "CONTENTSTACK_OAUTH_REFRESH_TOKEN",
    "CONTENTSTACK_OAUTH_CLIENT_ID",
    "CONTENTSTACK_OAUTH_APP_ID",
    "CONTENTSTACK_OAUTH_CLIENT_SECRET",
    "CONTENTSTACK_OAUTH_EXPIRES_AT",
)


@contextlib.contextmanager
def personalize_environment(real: bool) -> Iterator[PersonalizeEmulator | None]:
    """Yield ``None`` for ``--real`` runs, else a served emulator the environment points at."""
    if real:
        if not os.environ.get("CONTENTSTACK_PERSONALIZE_PROJECT_UID"):
            sys.exit(
                "--real needs CONTENTSTACK_PERSONALIZE_PROJECT_UID and CONTENTSTACK_AUTHTOKEN "
                "(or OAuth variables) set; see docs/authentication.md"
            )
        yield None
        return
    # "reject" makes the emulator refuse keys that are not custom attributes, like a strict
    # real project would: an example that forgets to create its attributes fails loudly.
    emulator = PersonalizeEmulator(unknown_attribute="reject")
    with emulator.serve() as server:
        saved = {name: os.environ.pop(name, None) for name in CLIENT_VARIABLES}
        os.environ.update(
            {
                "CONTENTSTACK_PERSONALIZE_PROJECT_UID": emulator.project_uid,
                "CONTENTSTACK_AUTHTOKEN": emulator.authtoken,
                "CONTENTSTACK_PERSONALIZE_EDGE_URL": server.edge_url,
                "CONTENTSTACK_PERSONALIZE_MANAGEMENT_URL": server.management_url,
            }
        )
        print(f"Emulated Personalize at {server.url} (project {emulator.project_uid})")
        try:
            yield emulator
        finally:
            for name in CLIENT_VARIABLES:
                os.environ.pop(name, None)
            os.environ.update({k: v for k, v in saved.items() if v is not None})
