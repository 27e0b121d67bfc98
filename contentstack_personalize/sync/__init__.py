"""The sync engine: rows from any source become Personalize user attributes, incrementally.

Example::

    from contentstack_personalize import PersonalizeClient
    from contentstack_personalize.sync import Field, Sync

    sync = Sync(client, match_on="user_id", mapping={"plan": "plan_tier"}, state="users.db")
    result = sync.run(rows)
"""

from ..state import (
    ExchangeStore,
    LockInfo,
    MemoryState,
    RunRecord,
    SQLiteState,
    StateStore,
    UserState,
)
from ._distributed import DistributedRun, SyncSpec, combine_results
from ._engine import OnDuplicate, Sync
from ._fields import Field, FieldSpec, NullPolicy
from ._partition import Partition, partition_of, partition_of_value
from ._progress import Progress, make_progress
from ._result import Change, Plan, RowIssue, RunStatus, SyncResult
from ._sender import EdgeSender, HttpxSender, SendOutcome, ThreadedSender
from ._sources import from_csv, from_sql
from ._typecheck import TypeCheck, TypeIssue

__all__ = [
    "Change",
    "DistributedRun",
    "EdgeSender",
    "ExchangeStore",
    "Field",
    "FieldSpec",
    "HttpxSender",
    "LockInfo",
    "MemoryState",
    "NullPolicy",
    "OnDuplicate",
    "Partition",
    "Plan",
    "Progress",
    "RowIssue",
    "RunRecord",
    "RunStatus",
    "SQLiteState",
    "SendOutcome",
    "StateStore",
    "Sync",
    "SyncResult",
    "SyncSpec",
    "ThreadedSender",
    "TypeCheck",
    "TypeIssue",
    "UserState",
    "combine_results",
    "from_csv",
    "from_sql",
    "make_progress",
    "partition_of",
    "partition_of_value",
]
