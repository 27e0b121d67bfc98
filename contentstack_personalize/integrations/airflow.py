"""Apache Airflow: a connection type with its Hook, and an Operator that runs the library's
``Sync`` from a SQL query on another connection (or from a callable that yields rows).

The package registers itself as an Airflow provider (the ``apache_airflow_provider`` entry
point), so the **Contentstack Personalize** connection type shows in the UI: *Project UID*
(login), *Authtoken* (password, masked), and the extras ``region``, ``state``, ``edge_url`` and
``management_url``.

Example::

    from contentstack_personalize import Field
    from contentstack_personalize.integrations.airflow import PersonalizeSyncOperator

    PersonalizeSyncOperator(
        task_id="sync_users",
        sql="SELECT user_id, plan, ltv FROM analytics.users",
        sql_conn_id="warehouse",
        match_on="user_id",
        mapping={"plan": "plan", "ltv": Field("lifetime_value", type=float)},
        retries=3,
    )

Needs ``pip install 'contentstack-personalize[airflow]'``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from ..client import PersonalizeClient
from ..errors import PersonalizeError
from ..sync import Field, FieldSpec, Sync, SyncResult, from_sql
from ._airflow_provider import CONN_TYPE, get_provider_info
from ._common import make_client, outcome_of_error, outcome_of_result, result_metadata

try:  # Airflow 3
    from airflow.sdk import BaseHook, BaseOperator
    from airflow.sdk.exceptions import AirflowException, AirflowFailException
except ImportError:  # pragma: no cover - Airflow 2
    from airflow.exceptions import AirflowException, AirflowFailException
    from airflow.hooks.base import BaseHook
    from airflow.models import BaseOperator

try:
    from airflow.sdk.log import mask_secret
except ImportError:  # pragma: no cover - Airflow 2
    from airflow.utils.log.secrets_masker import mask_secret

__all__ = ["PersonalizeHook", "PersonalizeSyncOperator", "get_provider_info"]

_RETRYABLE = ("retry", "busy", "interrupted")


class PersonalizeHook(BaseHook):  # type: ignore[misc]
    """A Contentstack Personalize connection: ``get_conn()`` gives a ``PersonalizeClient``.

    Connection fields: *Project UID* (login), *Authtoken* (password); extras ``region``,
    ``state``, ``edge_url``, ``management_url``. ``state`` is masked in logs like the password,
    since a PostgreSQL URL holds one.
    """

    conn_name_attr = "personalize_conn_id"
    default_conn_name = "personalize_default"
    conn_type = CONN_TYPE
    hook_name = "Contentstack Personalize"

    def __init__(self, personalize_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.personalize_conn_id = personalize_conn_id

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The connection form (Airflow 2's UI; Airflow 3 reads the provider info)."""
        info = get_provider_info()["connection-types"][0]
        behaviour: dict[str, Any] = info["ui-field-behaviour"]
        return {
            "hidden_fields": behaviour["hidden-fields"],
            "relabeling": behaviour["relabeling"],
            "placeholders": behaviour["placeholders"],
        }

    def _settings(self) -> dict[str, Any]:
        conn = self.get_connection(self.personalize_conn_id)
        extra = conn.extra_dejson if isinstance(conn.extra_dejson, dict) else {}
        if not conn.login:
            raise AirflowFailException(
                f"connection {self.personalize_conn_id!r} has no Project UID (its login field)"
            )
        state = extra.get("state") or None
        for secret in (conn.password, state):
            if secret:
                mask_secret(secret)
        return {
            "project_uid": conn.login,
            "authtoken": conn.password or None,
            "region": extra.get("region") or None,
            "edge_url": extra.get("edge_url") or None,
            "management_url": extra.get("management_url") or None,
            "state": state,
        }

    def get_conn(self) -> PersonalizeClient:
        """A client for the connection's project (close it, or use ``with``)."""
        settings = self._settings()
        settings.pop("state")
        return make_client(**settings)

    def get_state(self) -> str | None:
        """The connection's ``state`` extra (a path or URL), if any."""
        state = self._settings()["state"]
        return str(state) if state else None

    def test_connection(self) -> tuple[bool, str]:
        """The UI's *Test* button: read the project's attributes (sends no user data)."""
        try:
            with self.get_conn() as client:
                if not client.has_management_auth:
                    return True, "no authtoken: attributes cannot be checked or created"
                count = len(client.attributes.list())
        except (PersonalizeError, AirflowException) as exc:
            return False, str(exc)
        return True, f"connected: {count} attributes in project {client.project_uid}"


class PersonalizeSyncOperator(BaseOperator):  # type: ignore[misc]
    """Run a sync into Personalize users; its counts are the task's return value (XCom).

    Rows come from ``sql`` run on the connection ``sql_conn_id`` (any Airflow connection whose
    hook has ``get_conn()`` giving a DB-API connection: Postgres, Snowflake, BigQuery, SQLite,
    MySQL...), with ``parameters``; or from ``rows_callable(**op_kwargs)``, which may return
    anything ``Sync.run`` takes (rows, a DataFrame, a CSV path).

    ``match_on``, ``mapping``, ``sync_name`` (``name=``) and ``sync_options`` are those of
    :class:`~contentstack_personalize.sync.Sync`; ``state`` overrides the connection's
    ``state`` extra. An aborted or failed run fails the task: an outage or a busy sync with
    ``AirflowException`` (the task's ``retries`` apply), a configuration problem or refused data
    with ``AirflowFailException`` (no retry). ``fail_on_partial=True`` also fails a run that
    had some users refused (otherwise they are retried by the next run). Secrets never reach the
    logs or XCom.
    """

    template_fields: Sequence[str] = ("sql", "parameters", "sync_name", "state")
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers: ClassVar[dict[str, str]] = {"sql": "sql", "parameters": "json"}
    ui_color = "#6c5ce7"

    def __init__(
        self,
        *,
        match_on: str,
        mapping: Mapping[str, FieldSpec] | Sequence[Field],
        sql: str | None = None,
        sql_conn_id: str | None = None,
        parameters: Sequence[Any] | Mapping[str, Any] | None = None,
        rows_callable: Callable[..., Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        personalize_conn_id: str = PersonalizeHook.default_conn_name,
        sync_name: str | None = None,
        state: str | None = None,
        full: bool = False,
        fail_on_partial: bool = False,
        sync_options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (sql is None) == (rows_callable is None):
            raise ValueError("give either sql= (with sql_conn_id=) or rows_callable=")
        if sql is not None and not sql_conn_id:
            raise ValueError("sql= needs sql_conn_id=: the connection to run it on")
        self.match_on = match_on
        self.mapping = mapping
        self.sql = sql
        self.sql_conn_id = sql_conn_id
        self.parameters = parameters
        self.rows_callable = rows_callable
        self.op_kwargs = dict(op_kwargs or {})
        self.personalize_conn_id = personalize_conn_id
        self.sync_name = sync_name
        self.state = state
        self.full = full
        self.fail_on_partial = fail_on_partial
        self.sync_options = dict(sync_options or {})

    def _fail(self, outcome: str, message: str, cause: BaseException | None = None) -> None:
        if outcome in _RETRYABLE:
            raise AirflowException(message) from cause
        raise AirflowFailException(message) from cause

    def execute(self, context: Any) -> dict[str, Any]:
        hook = PersonalizeHook(self.personalize_conn_id)
        state = self.state or hook.get_state()
        if state is None:
            self.log.warning(
                "no state for this sync: every run sends every user again; set the "
                "connection's state extra (a PostgreSQL URL for workers that come and go)"
            )
        db: Any = None
        try:
            if self.sql is not None:
                db = BaseHook.get_connection(self.sql_conn_id).get_hook().get_conn()
                source = from_sql(db, self.sql, self.parameters)
            else:
                assert self.rows_callable is not None
                source = self.rows_callable(**self.op_kwargs)
            with (
                hook.get_conn() as client,
                Sync(
                    client,
                    match_on=self.match_on,
                    mapping=self.mapping,
                    state=state,
                    name=self.sync_name,
                    **self.sync_options,
                ) as sync,
            ):
                result = sync.run(source, full=self.full, progress=False)
        except PersonalizeError as exc:
            partial = getattr(exc, "result", None)
            if isinstance(partial, SyncResult):
                self._log_result(partial)
            self._fail(outcome_of_error(exc), f"Personalize sync failed: {exc}", exc)
            raise  # not reached
        finally:
            if db is not None:
                db.close()
        self._log_result(result)
        outcome = outcome_of_result(result)
        if outcome != "ok" and (outcome != "partial" or self.fail_on_partial):
            self._fail(
                outcome,
                f"Personalize sync {result.status.replace('_', ' ')}: "
                f"{result.error or f'{result.rejected} users refused'}",
            )
        meta = result_metadata(result)
        return json.loads(json.dumps(meta, default=str))  # type: ignore[no-any-return]

    def _log_result(self, result: SyncResult) -> None:
        log = self.log.info if result.ok else self.log.warning
        log("%s", result.summary())
