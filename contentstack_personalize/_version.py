"""The package version, read by the build backend and sent in the user-agent headers."""

__version__ = "0.1.0"
