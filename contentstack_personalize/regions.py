"""Regions and their base URLs (Edge API, Management API, CMA login, OAuth endpoints).

Paths hang directly off each host (no ``/v1``). Any URL can be overridden on the client, for a
proxy, a region this table does not know yet, or the local emulator.
"""

from __future__ import annotations

import enum

from .errors import ConfigurationError

__all__ = ["Region"]


class Region(str, enum.Enum):
    """A Contentstack region.

    ``Region.parse`` accepts the enum, its value or a common alias, case-insensitively::

        >>> Region.parse("eu")
        <Region.AWS_EU: 'aws-eu'>
        >>> Region.parse("US").edge_url
        'https://personalize-edge.contentstack.com'
    """

    AWS_NA = "aws-na"
    AWS_EU = "aws-eu"
    AWS_AU = "aws-au"
    AZURE_NA = "azure-na"
    AZURE_EU = "azure-eu"
    GCP_NA = "gcp-na"
    GCP_EU = "gcp-eu"

    @classmethod
    def parse(cls, value: Region | str | None) -> Region:
        """Turn a region name (``"eu"``, ``"AWS-NA"``, ``"us"``, ``"azure_na"``) into a Region.

        ``None`` and the empty string mean the default, AWS NA.
        """
        if isinstance(value, Region):
            return value
        if value is None or not str(value).strip():
            return cls.AWS_NA
        key = str(value).strip().lower().replace("_", "-").replace(" ", "-")
        if key in _ALIASES:
            return _ALIASES[key]
        known = ", ".join(sorted({r.value for r in cls} | set(_ALIASES)))
        raise ConfigurationError(f"unknown region {value!r}; use one of: {known}")

    @property
    def _prefix(self) -> str:
        return "" if self is Region.AWS_NA else f"{_SHORT[self]}-"

    @property
    def edge_url(self) -> str:
        """Base URL of the Personalize Edge API in this region."""
        return f"https://{self._prefix}personalize-edge.contentstack.com"

    @property
    def management_url(self) -> str:
        """Base URL of the Personalize Management API in this region."""
        return f"https://{self._prefix}personalize-api.contentstack.com"

    @property
    def cma_url(self) -> str:
        """Base URL of the Content Management API (used to log in)."""
        if self is Region.AWS_NA:
            return "https://api.contentstack.io"
        return f"https://{self._prefix}api.contentstack.com"

    @property
    def app_url(self) -> str:
        """Base URL of the Contentstack web app (OAuth authorize page)."""
        return f"https://{self._prefix}app.contentstack.com"

    @property
    def developerhub_url(self) -> str:
        """Base URL of the Developer Hub API (OAuth token endpoint)."""
        return f"https://{self._prefix}developerhub-api.contentstack.com"


_SHORT = {
    Region.AWS_NA: "",
    Region.AWS_EU: "eu",
    Region.AWS_AU: "au",
    Region.AZURE_NA: "azure-na",
    Region.AZURE_EU: "azure-eu",
    Region.GCP_NA: "gcp-na",
    Region.GCP_EU: "gcp-eu",
}

_ALIASES: dict[str, Region] = {r.value: r for r in Region}
_ALIASES.update(
    {
        "na": Region.AWS_NA,
        "us": Region.AWS_NA,
        "aws-us": Region.AWS_NA,
        "eu": Region.AWS_EU,
        "au": Region.AWS_AU,
        "azure-us": Region.AZURE_NA,
        "gcp-us": Region.GCP_NA,
    }
)
