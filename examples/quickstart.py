"""The main job: sync a CSV of users into Contentstack Personalize, then sync again incrementally.

By default it runs against the bundled emulator on a loopback socket, so it needs no
credentials and no network. To run it against a real project, set
``CONTENTSTACK_PERSONALIZE_PROJECT_UID`` and ``CONTENTSTACK_AUTHTOKEN`` (and
``CONTENTSTACK_REGION`` if not AWS NA) and pass ``--real``.

    python examples/quickstart.py [--real] [--csv PATH] [--state PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import logging
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from contentstack_personalize import AuthToken, PersonalizeClient
from contentstack_personalize.sync import Field, Sync
from contentstack_personalize.testing import PersonalizeEmulator

HERE = Path(__file__).parent
MAPPING = {
    "plan": "plan",
    "lifetime_value": Field("lifetime_value", type=float),
    "is_vip": Field("is_vip", type=bool),
    "signup_date": Field("signup_date", type=dt.date),
    "email": Field("email_domain", transform=lambda email: email.rsplit("@", 1)[1]),
}


@contextlib.contextmanager
def personalize(real: bool) -> Iterator[tuple[PersonalizeClient, PersonalizeEmulator | None]]:
    """A client for a real project (from the environment) or for an emulator on loopback."""
    if real:
        with PersonalizeClient() as client:
            yield client, None
        return
    emulator = PersonalizeEmulator(unknown_attribute="reject")
    with (
        emulator.serve() as server,
        PersonalizeClient(
            emulator.project_uid,
            auth=AuthToken(emulator.authtoken),
            edge_url=server.edge_url,
            management_url=server.management_url,
            read_env=False,
        ) as client,
    ):
        print(f"Emulated Personalize at {server.url} (project {emulator.project_uid})\n")
        yield client, emulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", action="store_true", help="use the project in the environment")
    parser.add_argument("--csv", type=Path, default=HERE / "data" / "users.csv")
    parser.add_argument("--state", type=Path, help="state file (default: a temporary one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    with tempfile.TemporaryDirectory() as tmp, personalize(args.real) as (client, emulator):
        state = args.state or Path(tmp) / "quickstart_state.db"
        sync = Sync(
            client,
            match_on="user_id",
            mapping=MAPPING,
            state=state,
            create_missing_attributes=True,
        )
        with sync:
            print(f"1. Planning a sync of {args.csv.name}: what a run would send (nothing is sent)")
            plan = sync.plan(args.csv)
            print(plan.summary() + "\n")
            plan.close()

            print(f"2. Syncing {args.csv.name} for the first time")
            first = sync.run(args.csv)
            print(first.summary() + "\n")

            # The data changes a little: one user upgrades, one stops being a VIP.
            print(
                "3. Changing 2 users (u00001 upgrades, u00002 is no longer a VIP) and syncing again"
            )
            changed = Path(tmp) / "users_changed.csv"
            with open(args.csv, newline="") as src, open(changed, "w", newline="") as dst:
                reader = csv.DictReader(src)
                writer = csv.DictWriter(dst, fieldnames=list(reader.fieldnames or []))
                writer.writeheader()
                for row in reader:
                    if row["user_id"] == "u00001":
                        row["plan"] = "enterprise"
                    if row["user_id"] == "u00002":
                        row["is_vip"] = "false"
                    writer.writerow(row)
            second = sync.run(changed)
            print(second.summary() + "\n")

        if emulator is not None:
            print("4. Reading user u00001 back from Personalize")
            print("In Personalize now, user u00001:", emulator.user_attributes("u00001"))
        ok = first.read == (
            first.invalid + first.unchanged + first.added + first.changed + first.rejected
        )
        return 0 if ok and first.rejected == 0 and second.requests <= 2 else 1


if __name__ == "__main__":
    sys.exit(main())
