"""Sync a CSV file of users into Personalize user attributes: the plain-script way.

    python examples/sync_csv.py [CSV] [--state PATH] [--real]

Without ``--real`` it runs against the bundled emulator (no credentials, no network). With
``--real`` the client reads the project and credentials from the environment
(``CONTENTSTACK_PERSONALIZE_PROJECT_UID``, ``CONTENTSTACK_AUTHTOKEN``, ``CONTENTSTACK_REGION``)
and remembers what it sent in ``--state`` (default ``users_sync.db``), so the next run sends only
what changed. Exit status: 0 when every valid row was synced, 1 when the API refused some, 2 on a
configuration error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import tempfile
from pathlib import Path

from _demo import personalize_environment

from contentstack_personalize import PersonalizeClient, PersonalizeError
from contentstack_personalize.sync import Field, Sync, SyncResult, from_csv

# Column -> attribute key. A CSV holds text: declare types so that "1597.42" is sent as a
# number and "true" as a boolean, and a cell that is neither makes its row invalid.
MAPPING: dict[str, str | Field] = {
    "plan": "plan",
    "lifetime_value": Field("lifetime_value", type=float),
    "is_vip": Field("is_vip", type=bool),
    "signup_date": Field("signup_date", type=dt.date),
    "country": "country_code",
}


def sync_csv(csv_path: Path, state: Path) -> SyncResult:
    """Sync one CSV file; the state file makes the next run incremental."""
    with (
        PersonalizeClient() as client,
        Sync(
            client,
            match_on="user_id",
            mapping=MAPPING,
            state=str(state),
            create_missing_attributes=True,  # or create them once in the Personalize UI
        ) as sync,
    ):
        return sync.run(from_csv(csv_path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "csv", nargs="?", type=Path, default=Path(__file__).parent / "data" / "users.csv"
    )
    parser.add_argument(
        "--state", type=Path, help="state file (default: users_sync.db with --real)"
    )
    parser.add_argument("--real", action="store_true", help="use the project in the environment")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    with tempfile.TemporaryDirectory() as tmp, personalize_environment(args.real):
        # A fresh emulator knows nobody, so a demo must not reuse an old state file.
        state = args.state or (Path("users_sync.db") if args.real else Path(tmp) / "state.db")
        try:
            result = sync_csv(args.csv, state)
        except PersonalizeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    print(result.summary())  # the counts, and the first invalid or rejected rows with reasons
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
