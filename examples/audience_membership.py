"""Audience membership: put users into Personalize audiences computed elsewhere (a warehouse
segment, a model's prediction), by syncing an attribute that the audiences' rules match.

    python examples/audience_membership.py [--real]

Personalize audiences are rules over user attributes; there is no "add user to audience" call.
So membership travels in one custom attribute, ``segments``, holding every segment of a user
wrapped in delimiters (``"|churn-risk|vip|"``), and each audience is one rule
``segments CONTAINS_SUBSTRING "|vip|"``. The delimiters keep ``"|vip|"`` from matching
``"|vip-lapsed|"``; a user in no segment gets ``""`` (not null, which the sync would skip), so
leaving every segment removes them from every audience.

NOTE: written against today's API. ``client.audiences.ensure_membership(...)`` and a membership
field helper (``contentstack_personalize.membership``) are coming and will replace
``SEGMENTS_FIELD`` and ``ensure_audience`` below; see docs/audiences-membership.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from _demo import personalize_environment

from contentstack_personalize import PersonalizeClient
from contentstack_personalize.models import Attribute, Audience
from contentstack_personalize.rules import Condition, Rule, all_of
from contentstack_personalize.sync import Field, MemoryState, Sync

ATTRIBUTE = "segments"
SEGMENTS = ("vip", "churn-risk")


def encode(segments: Iterable[str]) -> str:
    """``{"vip", "churn-risk"}`` -> ``"|churn-risk|vip|"``: sorted, so the same set is the same
    text (an unchanged membership sends nothing); ``""`` for no segment."""
    members = sorted({s.strip() for s in segments if s.strip()})
    if any("|" in s for s in members):
        raise ValueError(f"segment names may not contain '|': {members}")
    return "|" + "|".join(members) + "|" if members else ""


# compute= sees the whole row; a row whose segments cannot be encoded is invalid, with the reason.
SEGMENTS_FIELD = Field(ATTRIBUTE, compute=lambda row: encode(row["segments"]), type=str)


def ensure_audience(client: PersonalizeClient, segment: str, attribute: Attribute) -> Audience:
    """The audience of one segment, created if missing (found by name, so reruns are safe)."""
    name = f"Segment: {segment}"
    for audience in client.audiences.list():
        if audience.name == name:
            return audience
    rule = Rule.for_attribute(attribute, Condition.CONTAINS_SUBSTRING, f"|{segment}|")
    return client.audiences.create(
        name=name, definition=all_of(rule), description="synced by audience_membership.py"
    )


def sync_membership(sync: Sync, rows: Iterable[Mapping[str, Any]]) -> None:
    result = sync.run(rows)
    print(result.summary(), "\n")
    if not result.ok:
        raise SystemExit(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", action="store_true", help="use the project in the environment")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    # Who is in which segment, as the warehouse computed it today.
    today: list[dict[str, Any]] = [
        {"user_id": "m001", "segments": ["vip"]},
        {"user_id": "m002", "segments": ["vip", "churn-risk"]},
        {"user_id": "m003", "segments": []},
        {"user_id": "m004", "segments": ["vip-lapsed"]},  # must NOT land in "vip"
    ]
    with personalize_environment(args.real) as emulator, PersonalizeClient() as client:
        [attribute] = client.attributes.ensure({ATTRIBUTE: "Segments"})
        audiences = {s: ensure_audience(client, s, attribute) for s in SEGMENTS}
        for segment, audience in audiences.items():
            print(
                f"audience {audience.name!r} ({audience.uid}) <- {ATTRIBUTE} contains |{segment}|"
            )

        with Sync(
            client, match_on="user_id", mapping=[SEGMENTS_FIELD], state=MemoryState()
        ) as sync:
            sync_membership(sync, today)

            if emulator is not None:
                # Only to show the audiences at work: an experience shown to VIPs only.
                emulator.add_experience("VIP banner", audiences=[audiences["vip"].uid])

                def sees_vip_banner(uid: str) -> bool:
                    manifest = client.users.manifest(uid)
                    return manifest.experiences[0].active_variant_short_uid is not None

                print(
                    "in 'vip' today:",
                    [r["user_id"] for r in today if sees_vip_banner(r["user_id"])],
                )

            # Tomorrow m001 leaves every segment: "" is sent, and m001 leaves the audience.
            tomorrow = [dict(r) for r in today]
            tomorrow[0]["segments"] = []
            sync_membership(sync, tomorrow)
            if emulator is not None:
                print(
                    "in 'vip' tomorrow:",
                    [r["user_id"] for r in tomorrow if sees_vip_banner(r["user_id"])],
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
