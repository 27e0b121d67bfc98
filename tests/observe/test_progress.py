"""Which progress display ``progress=`` gives, and what each display shows."""

from __future__ import annotations

import io
import logging
import sys
import types
from typing import Any

import pytest

from contentstack_personalize import ConfigurationError
from contentstack_personalize.sync import _progress
from contentstack_personalize.sync._progress import (
    CallbackProgress,
    NullProgress,
    Progress,
    TextProgress,
    TqdmProgress,
    is_interactive,
    make_progress,
)


class FakeStream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.fixture
def no_notebook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_progress, "_in_notebook", lambda: False)


@pytest.fixture
def no_tqdm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)


class TestAutomaticChoice:
    def test_off_when_nobody_watches(self, no_notebook: None) -> None:
        assert isinstance(make_progress(None, stream=FakeStream(tty=False)), NullProgress)

    def test_a_bar_in_a_terminal(self, no_notebook: None) -> None:
        pytest.importorskip("tqdm")
        stream = FakeStream(tty=True)
        bar = make_progress(None, stream=stream)
        assert isinstance(bar, TqdmProgress)
        bar.start(10, "sync users")
        bar.advance(4)
        bar.close()
        assert "sync users" in stream.getvalue() and "4/10" in stream.getvalue()

    def test_the_terminal_is_stderr_by_default(
        self, no_notebook: None, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(sys, "stderr", FakeStream(tty=False))
        assert not is_interactive()
        monkeypatch.setattr(sys, "stderr", FakeStream(tty=True))
        assert is_interactive()

    def test_a_bar_in_a_notebook_even_without_a_terminal(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        pytest.importorskip("tqdm")

        class ZMQInteractiveShell:
            pass

        fake_ipython = types.ModuleType("IPython")
        fake_ipython.get_ipython = ZMQInteractiveShell  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "IPython", fake_ipython)
        assert is_interactive(FakeStream(tty=False))
        assert isinstance(make_progress(None, stream=FakeStream(tty=False)), TqdmProgress)

    def test_plain_ipython_in_a_pipe_is_not_a_notebook(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        class TerminalInteractiveShell:
            pass

        fake_ipython = types.ModuleType("IPython")
        fake_ipython.get_ipython = TerminalInteractiveShell  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "IPython", fake_ipython)
        assert not is_interactive(FakeStream(tty=False))

    def test_off_in_a_terminal_without_tqdm(self, no_notebook: None, no_tqdm: None) -> None:
        assert isinstance(make_progress(None, stream=FakeStream(tty=True)), NullProgress)


class TestExplicitChoice:
    def test_false_is_always_off(self, no_notebook: None) -> None:
        assert isinstance(make_progress(False, stream=FakeStream(tty=True)), NullProgress)

    def test_true_is_on_without_a_terminal(self, no_notebook: None) -> None:
        pytest.importorskip("tqdm")
        assert isinstance(make_progress(True, stream=FakeStream(tty=False)), TqdmProgress)

    def test_true_without_tqdm_falls_back_to_a_text_line(self, no_tqdm: None) -> None:
        stream = FakeStream(tty=False)
        bar = make_progress(True, stream=stream)
        assert isinstance(bar, TextProgress)
        bar.start(200, "sync")
        bar.advance(50)
        bar.close()
        assert stream.getvalue().endswith("\rsync: 50/200 (25%)\n")

    def test_a_bar_without_tqdm_says_which_extra_to_install(self, no_tqdm: None) -> None:
        with pytest.raises(ImportError, match=r"contentstack-personalize\[progress\]"):
            TqdmProgress()

    def test_a_callable_gets_done_and_total(self) -> None:
        calls: list[tuple[int, int | None]] = []
        bar = make_progress(lambda done, total: calls.append((done, total)))
        assert isinstance(bar, CallbackProgress)
        bar.start(None, "sync")
        bar.advance(3)
        bar.start(10, "sync")  # the total became known
        bar.advance(0)
        bar.advance(7)
        bar.close()
        bar.close()
        assert calls == [(0, None), (3, None), (3, 10), (10, 10), (10, 10)]

    def test_a_progress_object_is_used_as_is(self) -> None:
        class Mine:
            def start(self, total: int | None, description: str = "") -> None: ...
            def advance(self, n: int = 1) -> None: ...
            def close(self) -> None: ...

        mine = Mine()
        assert make_progress(mine) is mine
        assert isinstance(mine, Progress)

    def test_anything_else_is_refused_with_the_choices(self) -> None:
        with pytest.raises(ConfigurationError, match="callable fn\\(done, total\\)"):
            make_progress(42)  # type: ignore[arg-type]


class TestNeverBreaksARun:
    def test_a_failing_callback_is_logged_once_and_switched_off(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        calls = 0

        def boom(done: int, total: int | None) -> None:
            nonlocal calls
            calls += 1
            raise RuntimeError("widget gone")

        bar = CallbackProgress(boom)
        with caplog.at_level(logging.WARNING, logger="contentstack_personalize.sync"):
            bar.start(5)
            bar.advance(1)
            bar.advance(1)
            bar.close()
        assert calls == 1
        assert len([r for r in caplog.records if "progress display failed" in r.message]) == 1

    def test_a_text_line_on_a_closed_stream_is_switched_off(self) -> None:
        stream = FakeStream(tty=False)
        stream.close()
        bar = TextProgress(stream=stream, min_interval=0)
        bar.start(3)
        bar.advance(3)
        bar.close()
        assert bar.done == 3

    def test_text_line_redraws_at_most_every_min_interval(self) -> None:
        stream = FakeStream(tty=False)
        bar = TextProgress(stream=stream, min_interval=3600)
        bar.start(100)
        for _ in range(100):
            bar.advance(1)
        bar.close()
        # start and close draw; a huge interval suppresses every redraw in between.
        assert stream.getvalue() == "\r0/100 (0%)\r100/100 (100%)\n"


def test_null_progress_accepts_everything() -> None:
    bar: Any = make_progress(False)
    bar.start(None)
    bar.advance(5)
    bar.close()
    assert repr(bar) == "NullProgress()"
