"""Integrations with the tools data engineers schedule work in, each behind its own extra and
imported only when used: ``contentstack_personalize.integrations.dlt`` (``[dlt]``),
``.dagster`` (``[dagster]``), ``.prefect`` (``[prefect]``) and ``.airflow`` (``[airflow]``).

Each one builds the library's own :class:`~contentstack_personalize.sync.Sync` from the tool's
configuration and credentials, and maps the run's outcome onto the tool's conventions (its
retry rules, its metadata, its failure type). None of them re-implements any sync logic.
"""
