"""The ``contentstack-personalize`` command line: run a sync declared in a TOML file from cron,
CI or a container job.

::

    contentstack-personalize check users.sync.toml    # the file, the source and the credentials
    contentstack-personalize plan users.sync.toml     # what a run would send; sends nothing
    contentstack-personalize run users.sync.toml      # sync; exit code says how it went
    contentstack-personalize history users.sync.toml  # the latest runs
    contentstack-personalize reset users.sync.toml --yes

Credentials come from the environment only (``CONTENTSTACK_PERSONALIZE_PROJECT_UID``,
``CONTENTSTACK_AUTHTOKEN``, ``CONTENTSTACK_REGION``...). Every command takes ``--json``. The
exit codes are in :data:`EXIT_CODES` and ``docs/cli.md``. Also ``python -m
contentstack_personalize``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import re
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from .. import errors as _errors
from .._version import __version__
from ..client import PersonalizeClient
from ..errors import (
    APIStatusError,
    AuthenticationError,
    ConfigurationError,
    NotFoundError,
    PermissionDeniedError,
    PersonalizeError,
    RateLimitError,
    ServerError,
    SyncAbortedError,
    TransportError,
)
from ..sync import RowIssue, Sync, SyncResult
from ._file import SyncFile, SyncFileError, load_sync_file

__all__ = [
    "EXIT_ABORTED",
    "EXIT_BUSY",
    "EXIT_CODES",
    "EXIT_CONFIG",
    "EXIT_FAILED",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "SyncFile",
    "SyncFileError",
    "exit_code_for_error",
    "exit_code_for_result",
    "load_sync_file",
    "main",
]

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_PARTIAL = 4
EXIT_FAILED = 5
EXIT_UNAVAILABLE = 6
EXIT_ABORTED = 7
EXIT_BUSY = 8
EXIT_INTERRUPTED = 130

EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success (a run may still have skipped invalid rows: see 'invalid')",
    EXIT_INTERNAL: "unexpected error (a bug: please report it with the output)",
    EXIT_USAGE: "bad command line",
    EXIT_CONFIG: "configuration: the sync file, the source, the credentials or the project are "
    "wrong; fix them before retrying",
    EXIT_PARTIAL: "partially failed: some users were refused; the next run retries them",
    EXIT_FAILED: "failed: Personalize refused the users sent (a data or mapping problem)",
    EXIT_UNAVAILABLE: "unavailable: Personalize (or the state store) could not be reached or "
    "kept failing, or the sync is busy; retry later",
    EXIT_ABORTED: "aborted: too many users were refused and the run stopped early",
    EXIT_BUSY: "busy: another run of this sync holds its lock; nothing was done (skip or retry "
    "later)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C or SIGINT); what was acknowledged is kept",
}

logger = logging.getLogger("contentstack_personalize.cli")


# A result carries its error as text ("<ErrorClass>: message"): the class names tell why.
_CONFIG_IN_TEXT = re.compile(
    rf"\b({AuthenticationError.__name__}|{PermissionDeniedError.__name__}|"
    rf"{NotFoundError.__name__}|{ConfigurationError.__name__})\b"
)
_UNAVAILABLE_IN_TEXT = re.compile(
    r"\b(APIConnectionError|APITimeoutError|TransportError|ServerError|RateLimitError|"
    r"StateStoreError)\b|the state store failed"
)


def _unavailable(issue: RowIssue) -> bool:
    """Whether a refused user failed for want of a working service (no answer, 5xx, 429)."""
    return issue.status is None or issue.status >= 500 or issue.status == 429


def exit_code_for_result(result: SyncResult) -> int:
    """The exit code of a finished (or aborted) run."""
    if result.status == "succeeded":
        return EXIT_OK
    if result.status == "partially_failed":
        return EXIT_PARTIAL
    error = result.error or ""
    if _CONFIG_IN_TEXT.search(error):
        return EXIT_CONFIG
    if result.status == "aborted" and "interrupted" in error:
        return EXIT_INTERRUPTED
    if _UNAVAILABLE_IN_TEXT.search(error):
        return EXIT_UNAVAILABLE
    if result.rejected_rows and all(_unavailable(i) for i in result.rejected_rows):
        return EXIT_UNAVAILABLE
    return EXIT_ABORTED if result.status == "aborted" else EXIT_FAILED


def exit_code_for_error(exc: BaseException) -> int:
    """The exit code for an exception a command raised."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, SyncAbortedError):
        busy = getattr(_errors, "SyncInProgressError", None)
        if busy is not None and isinstance(exc.cause, busy):
            return EXIT_BUSY
        if isinstance(exc.cause, (KeyboardInterrupt, asyncio.CancelledError)):
            return EXIT_INTERRUPTED
        if isinstance(exc.cause, PersonalizeError) and not isinstance(exc.cause, SyncAbortedError):
            return exit_code_for_error(exc.cause)  # the run stopped because of this
        if isinstance(exc.result, SyncResult):
            return exit_code_for_result(exc.result)
        return EXIT_ABORTED
    if isinstance(exc, (ConfigurationError, AuthenticationError, PermissionDeniedError)):
        return EXIT_CONFIG
    if isinstance(exc, NotFoundError):
        return EXIT_CONFIG
    if isinstance(exc, (TransportError, ServerError, RateLimitError)):
        return EXIT_UNAVAILABLE
    if isinstance(exc, APIStatusError):
        return EXIT_FAILED
    busy = getattr(_errors, "SyncInProgressError", None)
    if busy is not None and isinstance(exc, busy):
        return EXIT_BUSY
    if isinstance(exc, PersonalizeError):
        # Anything else the library raises on purpose (a busy sync, a state store that cannot
        # be reached...) is worth another try later.
        return EXIT_UNAVAILABLE
    return EXIT_INTERNAL


# -- output ------------------------------------------------------------------------------------


class _Out:
    def __init__(self, as_json: bool, stdout: TextIO, stderr: TextIO) -> None:
        self.as_json = as_json
        self.stdout = stdout
        self.stderr = stderr

    def human(self, text: str) -> None:
        if not self.as_json:
            print(text, file=self.stdout)

    def note(self, text: str) -> None:
        """Side remarks (to stderr, so that stdout stays clean for pipes)."""
        print(text, file=self.stderr)

    def payload(self, data: dict[str, Any]) -> None:
        if self.as_json:
            print(json.dumps(data, default=str, sort_keys=False), file=self.stdout)

    def error(self, command: str, exc: BaseException, code: int) -> None:
        message = str(exc) or type(exc).__name__
        if self.as_json:
            body: dict[str, Any] = {
                "command": command,
                "ok": False,
                "exit_code": code,
                "error": {"type": type(exc).__name__, "message": message},
            }
            cause = getattr(exc, "cause", None)
            if isinstance(cause, PersonalizeError):
                body["error"]["cause"] = {"type": type(cause).__name__, "message": str(cause)}
            result = getattr(exc, "result", None)
            if isinstance(result, SyncResult):
                body["result"] = result.to_dict()
            self.payload(body)
        else:
            result = getattr(exc, "result", None)
            if isinstance(result, SyncResult):
                print(result.summary(), file=self.stdout)
            print(f"error: {message}", file=self.stderr)
            print(f"exit {code}: {EXIT_CODES.get(code, '')}", file=self.stderr)


def _fmt_time(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


# -- commands ----------------------------------------------------------------------------------


def _client() -> PersonalizeClient:
    return PersonalizeClient()  # everything from the environment


def _progress(args: argparse.Namespace, out: _Out) -> bool:
    if args.progress is not None:
        return bool(args.progress)
    isatty = getattr(out.stderr, "isatty", None)
    return bool(isatty and isatty())


def cmd_run(args: argparse.Namespace, spec: SyncFile, out: _Out) -> int:
    with _client() as client, spec.build(client) as sync, spec.open_source() as source:
        result = sync.run(source, full=args.full, progress=_progress(args, out))
    code = exit_code_for_result(result)
    out.human(result.summary())
    out.payload({"command": "run", "ok": code == EXIT_OK, "exit_code": code, **result.to_dict()})
    return code


def cmd_plan(args: argparse.Namespace, spec: SyncFile, out: _Out) -> int:
    with (
        _client() as client,
        spec.build(client) as sync,
        spec.open_source() as source,
        sync.plan(source, full=args.full) as plan,
    ):
        changes = []
        for i, change in enumerate(plan.changes()):
            if i >= args.changes:
                break
            changes.append(change)
        out.human(plan.summary())
        if changes and not out.as_json:
            out.human(f"first {len(changes)} changes:")
            for c in changes:
                out.human(f"  {c.uid}  {c.attribute}: {c.old!r} -> {c.new!r}")
        out.payload(
            {
                "command": "plan",
                "ok": True,
                "exit_code": EXIT_OK,
                "sync_name": plan.sync_name,
                **plan.counts(),
                "requests": plan.requests,
                "warnings": list(plan.warnings),
                "invalid_rows": [i.to_dict() for i in plan.invalid_rows],
                "changes": [
                    {"uid": c.uid, "attribute": c.attribute, "old": c.old, "new": c.new}
                    for c in changes
                ],
            }
        )
    return EXIT_OK


def cmd_history(args: argparse.Namespace, spec: SyncFile, out: _Out) -> int:
    with _client() as client, spec.build(client) as sync:
        runs = sync.history(limit=args.limit)
        name = sync.name
    out.payload(
        {
            "command": "history",
            "ok": True,
            "exit_code": EXIT_OK,
            "sync_name": name,
            "runs": [
                {
                    "run_id": r.run_id,
                    "status": r.status,
                    "started_at": r.started_at,
                    "finished_at": r.finished_at,
                    "duration": r.duration,
                    "counts": r.counts,
                    "error": r.error,
                }
                for r in runs
            ],
        }
    )
    if not runs:
        out.human(f"sync {name!r}: no runs recorded in {spec.state_description()}")
        return EXIT_OK
    out.human(f"sync {name!r}, latest {len(runs)} runs (UTC):")
    out.human(
        f"  {'run':<12}  {'started':<19}  {'status':<16} {'secs':>7} {'read':>9} {'added':>8} "
        f"{'changed':>8} {'rejected':>8}"
    )
    for r in runs:
        c = r.counts
        secs = f"{r.duration:.1f}" if r.duration is not None else "-"
        out.human(
            f"  {r.run_id:<12}  {_fmt_time(r.started_at):<19}  {r.status:<16} {secs:>7} "
            f"{c.get('read', 0):>9,} {c.get('added', 0):>8,} {c.get('changed', 0):>8,} "
            f"{c.get('rejected', 0):>8,}"
        )
        if r.error:
            out.human(f"      error: {r.error}")
    return EXIT_OK


def cmd_reset(args: argparse.Namespace, spec: SyncFile, out: _Out) -> int:
    if not args.yes:
        out.note(
            "reset forgets what Personalize has accepted: the next run sends every user again. "
            "Pass --yes to do it."
        )
        return EXIT_USAGE
    with _client() as client, spec.build(client) as sync:
        sync.reset()
        name = sync.name
    out.human(f"sync {name!r}: state forgotten; the next run sends everything")
    out.payload({"command": "reset", "ok": True, "exit_code": EXIT_OK, "sync_name": name})
    return EXIT_OK


def cmd_check(args: argparse.Namespace, spec: SyncFile, out: _Out) -> int:
    """Validate the file, the source's columns and the credentials; send nothing."""
    checks: list[dict[str, Any]] = []
    code = EXIT_OK

    def record(name: str, ok: bool | None, detail: str, fail_code: int = EXIT_CONFIG) -> None:
        nonlocal code
        checks.append({"check": name, "ok": ok, "detail": detail})
        if ok is False and code == EXIT_OK:
            code = fail_code

    record(
        "file", True, f"{spec.path.name}: match on {spec.match_on!r}, {len(spec.mapping)} fields"
    )
    with _client() as client:
        sync: Sync | None = None
        try:
            sync = spec.build(client)
            record("mapping", True, f"attribute keys: {', '.join(sync.keys)}")
            record("state", True, spec.state_description())
        except PersonalizeError as exc:
            record("sync", False, str(exc), exit_code_for_error(exc))
        try:
            columns = spec.source_columns()
            missing = [c for c in spec.columns() if c not in columns]
            if missing:
                record(
                    "source",
                    False,
                    f"{spec.source.describe()}: missing column(s) {', '.join(missing)} "
                    f"(it has {', '.join(columns) or 'none'})",
                )
            else:
                record("source", True, f"{spec.source.describe()}: {len(columns)} columns")
        except PersonalizeError as exc:
            record("source", False, str(exc), exit_code_for_error(exc))
        except Exception as exc:  # a database driver's own error
            record("source", False, f"{type(exc).__name__}: {exc}")
        if not client.project_uid:
            record("credentials", False, "no project: set CONTENTSTACK_PERSONALIZE_PROJECT_UID")
        elif not client.has_management_auth:
            record(
                "credentials",
                None,
                "no Management credentials (CONTENTSTACK_AUTHTOKEN or OAuth): attributes will "
                "not be checked or created; writing user attributes needs none",
            )
        else:
            try:
                existing = {a.key for a in client.attributes.list() if a.type == "CUSTOM"}
            except PersonalizeError as exc:
                record("credentials", False, str(exc), exit_code_for_error(exc))
            else:
                record("credentials", True, f"project {client.project_uid}: credentials accepted")
                if sync is not None:
                    absent = [k for k in sync.keys if k not in existing]
                    creates = bool(spec.options.get("create_missing_attributes"))
                    if not absent:
                        record("attributes", True, "every mapped key is a custom attribute")
                    elif creates:
                        record("attributes", True, f"will be created: {', '.join(absent)}")
                    elif spec.options.get("check_attributes", True):
                        record(
                            "attributes",
                            False,
                            f"not custom attributes of the project: {', '.join(absent)} (create "
                            "them, or set create_missing_attributes = true)",
                        )
        if sync is not None:
            sync.close()
    for c in checks:
        mark = {True: "ok  ", False: "FAIL", None: "note"}[c["ok"]]
        out.human(f"{mark}  {c['check']:<12} {c['detail']}")
    out.human("check passed" if code == EXIT_OK else f"check failed (exit {code})")
    out.payload({"command": "check", "ok": code == EXIT_OK, "exit_code": code, "checks": checks})
    return code


_COMMANDS = {
    "run": cmd_run,
    "plan": cmd_plan,
    "history": cmd_history,
    "reset": cmd_reset,
    "check": cmd_check,
}


def _parser() -> argparse.ArgumentParser:
    epilog = "exit codes:\n" + "\n".join(f"  {k:>3}  {v}" for k, v in EXIT_CODES.items())
    parser = argparse.ArgumentParser(
        prog="contentstack-personalize",
        description="Run a Contentstack Personalize sync declared in a TOML file. Credentials "
        "come from the environment (CONTENTSTACK_PERSONALIZE_PROJECT_UID, "
        "CONTENTSTACK_AUTHTOKEN, CONTENTSTACK_REGION).",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help,
            description=help,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("sync_file", metavar="SYNC_FILE", help="the sync's TOML file")
        p.add_argument("--json", action="store_true", help="one JSON object on stdout")
        p.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv: debug)")
        return p

    p = add("run", "sync the source into Personalize, sending only what changed")
    p.add_argument("--full", action="store_true", help="ignore the state; send everything")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a progress bar on stderr (default: when stderr is a terminal)",
    )
    p = add("plan", "show what a run would send; sends nothing")
    p.add_argument("--full", action="store_true", help="preview a full resync")
    p.add_argument("--changes", type=int, default=20, metavar="N", help="list N changes (20)")
    p = add("history", "the latest runs of this sync")
    p.add_argument("--limit", type=int, default=20, metavar="N")
    p = add("reset", "forget the state: the next run sends everything")
    p.add_argument("--yes", action="store_true", help="really do it")
    add("check", "validate the file, the source and the credentials; sends nothing")
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the command line; return the exit code."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    handler = logging.StreamHandler(stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    package_logger = logging.getLogger("contentstack_personalize")
    package_logger.addHandler(handler)
    previous_level = package_logger.level
    package_logger.setLevel(level)
    out = _Out(args.json, stdout, stderr)
    try:
        spec = load_sync_file(args.sync_file)
        return _COMMANDS[args.command](args, spec, out)
    except KeyboardInterrupt as exc:
        out.error(args.command, exc, EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED
    except PersonalizeError as exc:
        code = exit_code_for_error(exc)
        out.error(args.command, exc, code)
        return code
    except Exception as exc:
        logger.exception("unexpected error")
        out.error(args.command, exc, EXIT_INTERNAL)
        return EXIT_INTERNAL
    finally:
        package_logger.removeHandler(handler)
        package_logger.setLevel(previous_level)
