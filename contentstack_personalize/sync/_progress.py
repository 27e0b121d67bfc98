"""Progress display of a run: a tiny protocol and the implementations ``progress=`` chooses.

Owns :class:`Progress` (``start`` / ``advance`` / ``close``), :class:`TqdmProgress` (a tqdm bar,
a widget in Jupyter when ipywidgets is there; tqdm is optional and imported only when used),
:class:`TextProgress` (a plain line on stderr, when progress is forced on without tqdm),
:class:`CallbackProgress` (``progress=callable(done, total)``), :class:`NullProgress`, and
:func:`make_progress`, which turns the ``progress=`` argument into one of them:

- ``None`` (auto): a bar only when someone is watching, i.e. stderr is a terminal or the code
  runs in a Jupyter kernel, and tqdm is installed; otherwise nothing (cron jobs, CI and
  orchestrators get clean logs).
- ``True``: always a bar (tqdm when installed, else a plain text line); ``False``: never.
- a callable: called as ``fn(done, total)``; ``total`` may be ``None`` when not known yet.
- any object with ``start``, ``advance`` and ``close``: used as it is.

A progress display never breaks a run: an exception from a callback or from tqdm is logged once
and the display is switched off.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import IO, Any, Protocol, runtime_checkable

from ..errors import ConfigurationError

__all__ = [
    "CallbackProgress",
    "NullProgress",
    "Progress",
    "ProgressArg",
    "ProgressCallback",
    "TextProgress",
    "TqdmProgress",
    "is_interactive",
    "make_progress",
]

logger = logging.getLogger("contentstack_personalize.sync")

ProgressCallback = Callable[[int, int | None], object]


@runtime_checkable
class Progress(Protocol):
    """Something that shows how far a run is.

    ``start`` may be called again to change the total or the description (for example when
    the total becomes known); ``done`` carries over.

    Example::

        class Logged:
            def start(self, total, description=""): print("start", total, description)
            def advance(self, n=1): ...
            def close(self): print("done")

        Sync(client, ..., progress=Logged())
    """

    def start(self, total: int | None, description: str = "") -> None:
        """Begin (or re-label) the display; ``total=None`` when not known."""
        ...

    def advance(self, n: int = 1) -> None:
        """``n`` more units are done."""
        ...

    def close(self) -> None:
        """The run is over; release the display."""
        ...


ProgressArg = bool | ProgressCallback | Progress | None


class NullProgress:
    """Shows nothing.

    Example: ``make_progress(False)`` returns one.
    """

    def start(self, total: int | None, description: str = "") -> None:
        """Do nothing."""

    def advance(self, n: int = 1) -> None:
        """Do nothing."""

    def close(self) -> None:
        """Do nothing."""

    def __repr__(self) -> str:
        return "NullProgress()"


class _Guarded:
    """Counts ``done`` and switches itself off after the first failure of its display."""

    def __init__(self) -> None:
        self.total: int | None = None
        self.description = ""
        self.done = 0
        self.closed = False
        self._broken = False

    def _fail(self, what: str) -> None:
        if not self._broken:
            logger.warning(
                "progress display failed in %s; continuing without it", what, exc_info=True
            )
        self._broken = True


class CallbackProgress(_Guarded):
    """Calls ``callback(done, total)`` on start, on every advance and once at close.

    It runs in the run's own thread or event loop: keep it quick (update a widget, set a
    value, log every N rows).

    Example::

        def show(done, total):
            if done % 10_000 == 0:
                print(f"{done}/{total}")

        Sync(client, ..., progress=show)
    """

    def __init__(self, callback: ProgressCallback) -> None:
        super().__init__()
        if not callable(callback):
            raise ConfigurationError("progress callback must be callable as fn(done, total)")
        self.callback = callback

    def _call(self) -> None:
        if self._broken:
            return
        try:
            self.callback(self.done, self.total)
        except Exception:
            self._fail(f"callback {self.callback!r}")

    def start(self, total: int | None, description: str = "") -> None:
        """Record the total and report ``(done, total)``."""
        self.total, self.description = total, description
        self._call()

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more and report."""
        if n:
            self.done += n
            self._call()

    def close(self) -> None:
        """Report the final count once."""
        if not self.closed:
            self.closed = True
            self._call()

    def __repr__(self) -> str:
        return f"CallbackProgress({self.callback!r}, done={self.done}, total={self.total})"


class TqdmProgress(_Guarded):
    """A tqdm progress bar (``tqdm.auto``: a widget in Jupyter, text in a terminal).

    Needs tqdm: ``pip install 'contentstack-personalize[progress]'``.

    Example: ``Sync(client, ..., progress=TqdmProgress(unit="row"))``
    """

    def __init__(self, *, unit: str = "row", file: IO[str] | None = None, **options: Any) -> None:
        super().__init__()
        try:
            from tqdm.auto import tqdm
        except ImportError as exc:
            raise ImportError(
                "a progress bar needs tqdm, which is not installed: "
                "pip install 'contentstack-personalize[progress]' (or pass progress=False)"
            ) from exc
        self._tqdm_cls = tqdm
        self._options = {"unit": unit, "file": file, "dynamic_ncols": True, **options}
        self._bar: Any = None

    def start(self, total: int | None, description: str = "") -> None:
        """Open the bar, or update its total and description."""
        self.total, self.description = total, description
        if self._broken:
            return
        try:
            if self._bar is None:
                self._bar = self._tqdm_cls(total=total, desc=description or None, **self._options)
            else:
                self._bar.total = total
                self._bar.set_description_str(description or "", refresh=False)
                self._bar.refresh()
        except Exception:
            self._fail("tqdm")

    def advance(self, n: int = 1) -> None:
        """Move the bar by ``n``."""
        self.done += n
        if self._bar is not None and not self._broken and n:
            try:
                self._bar.update(n)
            except Exception:
                self._fail("tqdm")

    def close(self) -> None:
        """Close the bar."""
        if self.closed:
            return
        self.closed = True
        if self._bar is not None:
            try:
                self._bar.close()
            except Exception:
                self._fail("tqdm")

    def __repr__(self) -> str:
        return f"TqdmProgress(done={self.done}, total={self.total})"


class TextProgress(_Guarded):
    """A single self-overwriting line on a stream (stderr by default), at most every
    ``min_interval`` seconds; used for ``progress=True`` when tqdm is not installed.

    Example: ``Sync(client, ..., progress=TextProgress(min_interval=1.0))``
    """

    def __init__(self, *, stream: IO[str] | None = None, min_interval: float = 0.5) -> None:
        super().__init__()
        self.stream = stream
        self.min_interval = min_interval
        self._last = float("-inf")

    def _line(self) -> str:
        label = f"{self.description}: " if self.description else ""
        if self.total:
            pct = min(100.0, 100.0 * self.done / self.total)
            return f"{label}{self.done:,}/{self.total:,} ({pct:.0f}%)"
        return f"{label}{self.done:,}"

    def _show(self, force: bool = False) -> None:
        if self._broken:
            return
        now = time.monotonic()
        if not force and now - self._last < self.min_interval:
            return
        self._last = now
        stream = self.stream or sys.stderr
        try:
            stream.write("\r" + self._line())
            stream.flush()
        except Exception:
            self._fail("the text display")

    def start(self, total: int | None, description: str = "") -> None:
        """Show the line with the new total."""
        self.total, self.description = total, description
        self._show(force=True)

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more; redraw when ``min_interval`` has passed."""
        self.done += n
        self._show()

    def close(self) -> None:
        """Draw the final line and end it."""
        if self.closed:
            return
        self.closed = True
        self._show(force=True)
        if not self._broken:
            try:
                (self.stream or sys.stderr).write("\n")
            except Exception:
                self._fail("the text display")

    def __repr__(self) -> str:
        return f"TextProgress(done={self.done}, total={self.total})"


def _in_notebook() -> bool:
    """Whether this code runs in a Jupyter kernel (IPython with a ZMQ kernel)."""
    ipython_mod = sys.modules.get("IPython")
    if ipython_mod is None:
        return False
    get_ipython = getattr(ipython_mod, "get_ipython", None)
    if get_ipython is None:
        return False
    try:
        shell = get_ipython()
    except Exception:
        return False
    if shell is None:
        return False
    return type(shell).__name__ == "ZMQInteractiveShell" or hasattr(shell, "kernel")


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except Exception:  # closed or odd streams
        return False


def is_interactive(stream: Any = None) -> bool:
    """Whether someone is watching: ``stream`` (stderr by default) is a terminal, or we run
    in a Jupyter kernel.

    Example: ``is_interactive()`` is ``False`` under cron, CI and most orchestrators.
    """
    return _is_tty(sys.stderr if stream is None else stream) or _in_notebook()


def _tqdm_available() -> bool:
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


def make_progress(progress: ProgressArg = None, *, stream: IO[str] | None = None) -> Progress:
    """Turn a ``progress=`` argument into a :class:`Progress` (see the module docs).

    Example::

        bar = make_progress(None)          # auto: a bar in a terminal or notebook, else nothing
        bar.start(total=1000, description="sync users")
        bar.advance(10)
        bar.close()
    """
    if progress is None:
        if not is_interactive(stream):
            return NullProgress()
        if not _tqdm_available():
            logger.debug("no progress bar: tqdm is not installed")
            return NullProgress()
        return TqdmProgress(file=stream)
    if progress is False:
        return NullProgress()
    if progress is True:
        if _tqdm_available():
            return TqdmProgress(file=stream)
        return TextProgress(stream=stream)
    if isinstance(progress, Progress):
        return progress
    if callable(progress):
        return CallbackProgress(progress)
    raise ConfigurationError(
        "progress must be None (automatic), True, False, a callable fn(done, total) or an "
        f"object with start/advance/close, not {type(progress).__name__}"
    )
