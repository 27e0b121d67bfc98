"""Stage: the pre-flight, before anything is read. With Management credentials, checks (or
creates) the mapped attributes and reads what the audience rules expect of them."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import attrs

from ..errors import ConfigurationError, PersonalizeError
from ._client_access import ClientCalls
from ._typecheck import expectations_from_audiences

__all__ = ["Preflight", "PreflightFailed", "preflight"]

logger = logging.getLogger("contentstack_personalize.sync")

NO_MANAGEMENT = (
    "no Management API credentials: mapped keys were not checked against the "
    "project's custom attributes nor its audience rules (pass auth=... to check them)"
)


@attrs.frozen
class Preflight:
    """Warnings for the report, and the type expectations per attribute key."""

    warnings: list[str]
    expectations: dict[str, tuple[set[str], list[str]]]


class PreflightFailed(Exception):
    """The Management API failed during the pre-flight; carries the API's error."""

    def __init__(self, cause: PersonalizeError) -> None:
        super().__init__(str(cause))
        self.cause = cause


async def preflight(
    calls: ClientCalls,
    keys: Sequence[str],
    *,
    project_uid: str | None,
    check: bool,
    create_missing: bool,
    types: bool,
    create: bool,
) -> Preflight:
    """Check (``check``) or create (``create_missing``, and ``create``: a run, not a plan) the
    mapped ``keys`` as custom attributes, and read the audiences when ``types`` are checked.
    Raises :class:`ConfigurationError` when a run would write keys that are not custom
    attributes; API errors propagate (a run wraps them in :class:`PreflightFailed`)."""
    checks = check or create_missing
    if not checks and not types:
        return Preflight([], {})
    warnings: list[str] = []
    attributes = await calls.list_attributes()
    if checks:
        custom = {a.key for a in attributes if a.is_custom}
        presets = {a.key for a in attributes if not a.is_custom}
        missing = [k for k in keys if k not in custom]
        preset_hits = [k for k in missing if k in presets]
        if missing:
            verb = "is a preset" if len(preset_hits) == 1 else "are presets"
            detail = ""
            if preset_hits:
                detail = f" ({', '.join(preset_hits)} {verb}, which a sync cannot write)"
            message = (
                f"mapped keys {missing} are not custom attributes of project "
                f"{project_uid}{detail}; create them in Personalize or pass "
                "create_missing_attributes=True"
            )
            if create_missing and not preset_hits:
                if create:
                    attributes = await calls.ensure_attributes(keys)
                else:
                    warnings.append(message.split(";")[0] + "; the run will create them")
            elif create:
                raise ConfigurationError(message)
            else:
                warnings.append(message)
    expectations: dict[str, tuple[set[str], list[str]]] = {}
    if types:
        audiences = await calls.list_audiences()
        expectations = expectations_from_audiences(attributes, audiences)
    return Preflight(warnings, expectations)
