"""``python -m contentstack_personalize``: the same command line as ``contentstack-personalize``."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
