"""Optional dependencies, imported only when a feature that needs them is used.

Nothing here imports an optional package at import time: ``import contentstack_personalize``
works without pandas, and ``to_pandas()`` says which extra to install when it is missing.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["require_pandas"]


def require_pandas(what: str) -> Any:
    """Import pandas, or raise an ImportError that names the extra to install.

    Example: ``pd = require_pandas("SyncResult.to_pandas()")``
    """
    try:
        return importlib.import_module("pandas")
    except ImportError as exc:
        raise ImportError(
            f"{what} needs pandas, which is not installed: "
            "pip install 'contentstack-personalize[pandas]'"
        ) from exc
