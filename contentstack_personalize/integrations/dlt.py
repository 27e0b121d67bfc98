"""A dlt destination: any dlt source loads straight into Personalize user attributes.

Example::

    import dlt
    from dlt.sources.sql_database import sql_table
    from contentstack_personalize import Field
    from contentstack_personalize.integrations.dlt import personalize_destination

    destination = personalize_destination(
        table="users",
        match_on="user_id",
        mapping={"plan": "plan", "lifetime_value": Field("lifetime_value", type=float)},
        create_missing_attributes=True,
    )
    pipeline = dlt.pipeline("users_to_personalize", destination=destination)
    pipeline.run(sql_table(credentials="sqlite:///warehouse.db", table="users"))

Credentials and the state URL come from dlt's configuration, under
``[destination.personalize]`` in ``.dlt/secrets.toml`` (or ``DESTINATION__PERSONALIZE__*``
environment variables): ``project_uid``, ``authtoken``, ``region``, ``state``. Every batch dlt
hands over is one incremental run of the library's ``Sync``; a configuration error raises
``DestinationTerminalException`` (dlt does not retry it), an outage a
``DestinationTransientException`` (dlt retries the batch). Needs ``pip install
'contentstack-personalize[dlt]'``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import dlt
from dlt.common.destination.exceptions import (
    DestinationTerminalException,
    DestinationTransientException,
)
from dlt.common.typing import TSecretStrValue

from ..errors import PersonalizeError
from ..sync import Field, FieldSpec, Sync
from ._common import make_client, outcome_of_error, outcome_of_result

__all__ = ["personalize_destination"]

logger = logging.getLogger("contentstack_personalize.integrations.dlt")

_RETRYABLE = ("retry", "busy", "interrupted")


def _raise_for(outcome: str, message: str, cause: BaseException | None = None) -> None:
    if outcome in _RETRYABLE:
        raise DestinationTransientException(message) from cause
    raise DestinationTerminalException(message) from cause


def personalize_destination(
    *,
    match_on: str,
    mapping: Mapping[str, FieldSpec] | Sequence[Field],
    table: str | None = None,
    name: str | None = None,
    destination_name: str = "personalize",
    batch_size: int = 5000,
    **sync_options: Any,
) -> Any:
    """A dlt destination that syncs one dlt table into Personalize users.

    - ``match_on``, ``mapping`` and ``sync_options`` (``create_missing_attributes``,
      ``on_duplicate``, ``type_check``, ``alerts``, ``debugger``...) are those of
      :class:`~contentstack_personalize.sync.Sync`.
    - ``table``: the dlt table to sync; rows of any other table are refused (a terminal error).
      ``None`` syncs whatever table is loaded.
    - ``name``: the sync's stable name in the state store (default ``"dlt/<table>"``).
    - ``destination_name``: dlt's name for the destination, and so its configuration section
      (``[destination.<destination_name>]``).
    - ``batch_size``: rows per call, i.e. per incremental run (5000).

    Configuration read the dlt way (``.dlt/secrets.toml``, ``.dlt/config.toml`` or
    ``DESTINATION__PERSONALIZE__<KEY>`` variables): ``project_uid`` (required), ``authtoken``
    (to check and create attributes), ``region``, ``state`` (an SQLite path or a state URL;
    without it every batch sends everything), ``edge_url`` and ``management_url``.
    """
    if "state" in sync_options or "client" in sync_options:
        raise TypeError("give state= in dlt's configuration ([destination.personalize] state)")

    def personalize(
        items: Any,
        table_schema: Any,
        project_uid: str = dlt.secrets.value,
        authtoken: TSecretStrValue | None = None,
        region: str | None = None,
        state: TSecretStrValue | None = None,
        edge_url: str | None = None,
        management_url: str | None = None,
    ) -> None:
        table_name = str(table_schema["name"])
        if table is not None and table_name != table:
            raise DestinationTerminalException(
                f"the Personalize destination syncs the table {table!r}, not {table_name!r}: "
                "load other tables to another destination"
            )
        if state is None:
            logger.warning(
                "no state configured for the Personalize destination: every batch sends every "
                "user; set [destination.%s] state = ... (a path, or a PostgreSQL URL)",
                destination_name,
            )
        try:
            with (
                make_client(
                    project_uid,
                    authtoken=authtoken,
                    region=region,
                    edge_url=edge_url,
                    management_url=management_url,
                ) as client,
                Sync(
                    client,
                    match_on=match_on,
                    mapping=mapping,
                    state=state,
                    name=name or f"dlt/{table_name}",
                    **sync_options,
                ) as sync,
            ):
                result = sync.run(items, progress=False)
        except PersonalizeError as exc:
            _raise_for(outcome_of_error(exc), f"Personalize sync of {table_name!r}: {exc}", exc)
            raise  # not reached
        outcome = outcome_of_result(result)
        line = (
            f"Personalize sync {result.sync_name!r} run {result.run_id}: {result.status}; "
            + ", ".join(f"{k} {v}" for k, v in result.counts().items())
            + f", requests {result.requests}"
        )
        if outcome == "ok":
            logger.info(line)
        elif outcome == "partial":
            # The refused users are remembered and sent again by the next run: no dlt retry.
            logger.warning(line)
        else:
            _raise_for(outcome, f"{line}; {result.error or 'every user sent was refused'}")

    return dlt.destination(
        personalize,
        name=destination_name,
        batch_size=batch_size,
        naming_convention="direct",
        skip_dlt_columns_and_tables=True,
        max_table_nesting=0,
        loader_parallelism_strategy="table-sequential",
    )()
