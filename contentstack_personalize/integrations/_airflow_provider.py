"""Airflow's provider metadata for this package, found through the ``apache_airflow_provider``
entry point. It imports nothing from Airflow, so discovering providers stays cheap."""

from __future__ import annotations

from typing import Any

from .._version import __version__

__all__ = ["get_provider_info"]

CONN_TYPE = "contentstack_personalize"


def get_provider_info() -> dict[str, Any]:
    """What Airflow's providers manager reads: the connection type, its hook and form fields."""
    optional_string = {"type": ["string", "null"]}
    return {
        "package-name": "contentstack-personalize",
        "name": "Contentstack Personalize",
        "description": "Sync rows into Contentstack Personalize user attributes.",
        "versions": [__version__],
        "connection-types": [
            {
                "connection-type": CONN_TYPE,
                "hook-class-name": (
                    "contentstack_personalize.integrations.airflow.PersonalizeHook"
                ),
                "hook-name": "Contentstack Personalize",
                "conn-fields": {
                    "region": {
                        "label": "Region",
                        "schema": {**optional_string, "default": "aws-na"},
                        "description": "aws-na, eu, au, azure-na, azure-eu, gcp-na or gcp-eu",
                    },
                    "state": {
                        "label": "State",
                        "schema": optional_string,
                        "description": "Where syncs remember what Personalize accepted: an "
                        "SQLite path, or a PostgreSQL URL for workers that come and go",
                    },
                    "edge_url": {"label": "Edge API URL", "schema": optional_string},
                    "management_url": {"label": "Management API URL", "schema": optional_string},
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["host", "schema", "port", "extra"],
                    "relabeling": {"login": "Project UID", "password": "Authtoken"},
                    "placeholders": {
                        "login": "24-hex project uid",
                        "password": "a user authtoken (to check and create attributes)",
                    },
                },
            }
        ],
    }
