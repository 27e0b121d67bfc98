"""Notebook-style: sync a pandas DataFrame, look at the plan and the result as tables and HTML.

    python examples/dataframe_notebook.py [--html sync_report.html] [--real]

The ``# %%`` markers make each block a cell in Jupyter (via jupytext), VS Code or PyCharm; run
the cells one by one, or the whole file as a script. It needs pandas
(``pip install 'contentstack-personalize[pandas]'``). ``Sync.run`` works inside Jupyter's
running event loop as it is; in async code, ``await sync.arun(df)``.
"""

# %% Setup: the emulator stands in for Personalize unless --real is given.
from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import pandas as pd
from _demo import personalize_environment

from contentstack_personalize import PersonalizeClient
from contentstack_personalize.sync import Field, MemoryState, Sync

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--html", type=Path, default=Path("sync_report.html"))
parser.add_argument("--real", action="store_true", help="use the project in the environment")
args, _ = parser.parse_known_args()  # parse_known_args: Jupyter passes its own arguments
cleanup = contextlib.ExitStack()  # a notebook keeps things open; the last cell closes them
cleanup.enter_context(personalize_environment(args.real))
HERE = Path(__file__).parent if "__file__" in globals() else Path.cwd()

# %% A DataFrame, as a warehouse query or a feature pipeline would produce it.
df = pd.read_csv(HERE / "data" / "users.csv", dtype={"user_id": "string"})
df["lifetime_value"] = pd.to_numeric(df["lifetime_value"], errors="coerce")  # "lots" -> NaN
df["signup_date"] = pd.to_datetime(df["signup_date"], errors="coerce").dt.date
df["is_vip"] = df["is_vip"].map({"true": True, "false": False, True: True, False: False})
df.head()

# %% Declare the sync. numpy numbers, NaN and dates are normalised for you; a NaN is "no value"
# and, with the default null policy "skip", leaves that attribute untouched for that user.
mapping: dict[str, str | Field] = {
    "plan": "plan",
    "lifetime_value": Field("lifetime_value", type=float),
    "is_vip": Field("is_vip", type=bool),
    "signup_date": Field("signup_date", type="date"),
}
client = cleanup.enter_context(PersonalizeClient())
sync = Sync(
    client,
    match_on="user_id",
    mapping=mapping,
    state=MemoryState(),  # a notebook session; use a file path to stay incremental across runs
    create_missing_attributes=True,
)

# %% Dry run: what would be sent, as a table. Nothing is sent.
plan = sync.plan(df)
print(plan.summary())
changes = pd.DataFrame(list(plan), columns=["uid", "attribute", "old", "new"])
changes.head(10)

# %% Run it, then look at the rows that were not synced, as a DataFrame.
result = sync.run(df)
print(result.summary())
issues = result.to_pandas()
issues[["kind", "row", "uid", "column", "reason"]]

# %% Change one user and run again: only that attribute of that user is sent.
df.loc[df["user_id"] == "u00001", "plan"] = "enterprise"
again = sync.run(df)
print(
    f"second run: {again.changed} changed, {again.unchanged} unchanged, {again.requests} requests"
)


# %% HTML views: in Jupyter, a cell ending in `plan` or `result` renders it as a table; here the
# same HTML goes to a file.
page = "\n".join(
    [
        "<!doctype html><meta charset='utf-8'><title>Sync report</title>",
        "<h2>Plan</h2>",
        plan._repr_html_(),
        "<h2>First run</h2>",
        result._repr_html_(),
        "<h2>Rows not synced</h2>",
        issues.to_html(index=False),
        "<h2>Second run</h2>",
        again._repr_html_(),
    ]
)
args.html.write_text(page, encoding="utf-8")
print(f"HTML report written to {args.html}")

# %% Clean up.
plan.close()
sync.close()
cleanup.close()
ok = result.rejected == 0 and again.requests == 1 and args.html.exists()
if __name__ == "__main__":
    sys.exit(0 if ok else 1)
