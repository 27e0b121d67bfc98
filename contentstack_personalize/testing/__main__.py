"""Serve the emulator from a shell, for benchmarks and clients in other languages::

    python -m contentstack_personalize.testing --port 8080 [--latency 0.05] [--seed 0]
        [--project-uid UID] [--organization-uid UID] [--authtoken TOKEN] [--record] ...

Prints the base URLs (including ``control_url``, the ``/_emulator`` inspection and control
endpoints), the uids and the authtoken, then serves until Ctrl-C or SIGTERM. ``--help`` lists
every flag.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from ._emulator import PersonalizeEmulator
from ._faults import Faults


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m contentstack_personalize.testing",
        description="Serve an in-memory Contentstack Personalize over HTTP.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to answers")
    parser.add_argument("--jitter", type=float, default=0.0, help="up to this many more seconds")
    parser.add_argument("--server-error-rate", type=float, default=0.0)
    parser.add_argument("--rate-limit-rate", type=float, default=0.0)
    parser.add_argument("--timeout-rate", type=float, default=0.0)
    parser.add_argument("--drop-rate", type=float, default=0.0)
    parser.add_argument(
        "--applied-before-failure",
        type=float,
        default=0.5,
        metavar="P",
        help="probability that a timed-out or dropped request was applied first (default 0.5)",
    )
    parser.add_argument(
        "--server-error-applied",
        type=float,
        default=0.0,
        metavar="P",
        help="probability that an injected 5xx is answered after the work was applied "
        "(default 0: a 5xx means nothing happened)",
    )
    parser.add_argument(
        "--fail-nth",
        action="append",
        default=[],
        metavar="N=FAILURE",
        help="fail the N-th request with a status code or server_error, rate_limit, timeout, "
        "drop (repeatable)",
    )
    parser.add_argument(
        "--unknown-attribute", choices=("accept", "ignore", "reject"), default="accept"
    )
    parser.add_argument("--null-value", choices=("delete", "store"), default="delete")
    parser.add_argument(
        "--audience-matching",
        choices=("strict", "lenient"),
        default="strict",
        help="strict: number rules match numbers only, as the service does (default); "
        "lenient: number-like text, 'true'/'false' and str(value) match too",
    )
    parser.add_argument(
        "--content-type",
        choices=("any", "json"),
        default="any",
        help="any: read bodies as JSON whatever their content type, as the real edge does "
        "(default); json: refuse bodies without a JSON content type",
    )
    parser.add_argument(
        "--string-case",
        choices=("sensitive", "insensitive"),
        default="sensitive",
        help="how STRING_EQUALS and CONTAINS_SUBSTRING compare text (default sensitive)",
    )
    parser.add_argument(
        "--edge-validation",
        choices=("strict", "lenient"),
        default="strict",
        help="strict: 400 for a write without a user uid or a malformed event (default); "
        "lenient: generate the uid, record events as sent",
    )
    parser.add_argument(
        "--merge-source",
        choices=("keep", "delete"),
        default="keep",
        help="what a merge leaves of the source user (default keep)",
    )
    parser.add_argument(
        "--management-validation",
        choices=("strict", "lenient"),
        default="strict",
        help="strict: key formats, references and caps checked (default); lenient: only "
        "required fields and the definition's shape",
    )
    parser.add_argument(
        "--no-retry-after",
        action="store_true",
        help="the Management API's 429 carries no Retry-After header",
    )
    parser.add_argument(
        "--no-refresh-token-rotation",
        action="store_true",
        help="refresh tokens stay valid after use",
    )
    parser.add_argument("--project-uid", help="the project's uid (default: derived from --seed)")
    parser.add_argument(
        "--organization-uid", help="the organization's uid (default: derived from --seed)"
    )
    parser.add_argument(
        "--authtoken", help="the user authtoken the Management API accepts (default: generated)"
    )
    parser.add_argument("--unknown-event", choices=("accept", "reject"), default="accept")
    parser.add_argument(
        "--management-rate-limit",
        type=float,
        default=10.0,
        help="requests per second per organization; 0 disables it",
    )
    parser.add_argument(
        "--attribute",
        action="append",
        default=[],
        metavar="KEY",
        help="create this custom attribute in the project (repeatable)",
    )
    parser.add_argument(
        "--record", action="store_true", help="keep a log of requests (off: constant memory)"
    )
    return parser


def build(argv: Sequence[str] | None = None) -> tuple[PersonalizeEmulator, argparse.Namespace]:
    """The emulator the command line describes, and the parsed arguments (exits with status 2
    and a usage message on bad arguments, like any argparse program)."""
    parser = _parser()
    args = parser.parse_args(argv)
    fail_nth: dict[int, int | str] = {}
    for item in args.fail_nth:
        n, sep, failure = item.partition("=")
        if not sep or not n.strip().isdigit():
            parser.error(f"--fail-nth {item!r}: use N=FAILURE, e.g. 3=503 or 2=timeout")
        fail_nth[int(n)] = int(failure) if failure.strip().isdigit() else failure.strip()
    try:
        faults = Faults(
            latency=args.latency,
            jitter=args.jitter,
            server_error=args.server_error_rate,
            rate_limit=args.rate_limit_rate,
            timeout=args.timeout_rate,
            drop=args.drop_rate,
            applied_before_failure=args.applied_before_failure,
            server_error_applied=args.server_error_applied,
            fail_nth=fail_nth,
        )
    except ValueError as exc:
        parser.error(str(exc))
    try:
        emulator = PersonalizeEmulator(
            seed=args.seed,
            unknown_attribute=args.unknown_attribute,
            null_value=args.null_value,
            unknown_event=args.unknown_event,
            audience_matching=args.audience_matching,
            content_type=args.content_type,
            string_case=args.string_case,
            edge_validation=args.edge_validation,
            merge_source=args.merge_source,
            management_validation=args.management_validation,
            retry_after_header=not args.no_retry_after,
            refresh_token_rotation=not args.no_refresh_token_rotation,
            project_uid=args.project_uid,
            organization_uid=args.organization_uid,
            authtoken=args.authtoken,
            management_rate_limit=args.management_rate_limit or None,
            record_requests=args.record,
            faults=None if faults.is_quiet else faults,
        )
    except ValueError as exc:
        parser.error(str(exc))
    for key in args.attribute:
        emulator.add_attribute(key)
    return emulator, args


def main(argv: Sequence[str] | None = None) -> int:
    emulator, args = build(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with emulator.serve(host=args.host, port=args.port) as server:
        print(f"Contentstack Personalize emulator listening on {server.url}")
        print(f"  edge_url:         {server.edge_url}")
        print(f"  management_url:   {server.management_url}")
        print(f"  cma_url:          {server.cma_url}")
        print(f"  developerhub_url: {server.developerhub_url}")
        print(f"  control_url:      {server.control_url}")
        print(f"  organization_uid: {emulator.organization_uid}")
        print(f"  project_uid:      {emulator.project_uid}")
        print(f"  authtoken:        {emulator.authtoken}")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    print("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
