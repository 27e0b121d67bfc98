"""Partitions of a distributed run: users split by a stable hash of their UID, so every user
belongs to exactly one partition (see :mod:`._distributed` for the run itself)."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import attrs

from ..errors import ConfigurationError
from ._uids import uid_from_value

__all__ = ["Partition", "new_run_id", "partition_of", "partition_of_value"]


def partition_of(uid: str, count: int) -> int:
    """The partition (``0 <= p < count``) a user UID belongs to: a stable hash (BLAKE2b of its
    UTF-8 bytes), the same in every process, Python version and machine.

    Example (PySpark): ``df.repartition(n, partition_udf("user_id"))`` where the UDF returns
    ``partition_of(uid, n)``.
    """
    if not isinstance(count, int) or count < 1:
        raise ConfigurationError(f"the partition count must be a positive integer, not {count!r}")
    digest = hashlib.blake2b(uid.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


def partition_of_value(value: Any, count: int) -> int:
    """The partition of a row from its raw match value, read exactly as a run reads it (42,
    42.0, ``Decimal(42)`` and "42" are the same user). A value that is no usable UID goes to
    partition 0, whose run reports the row invalid with the reason.

    Example (Dask): ``df["p"] = df["user_id"].map(lambda v: partition_of_value(v, 8))``
    """
    uid, _ = uid_from_value(value)
    return partition_of(uid, count) if uid is not None else 0


def _check_index(instance: Any, attribute: Any, value: int) -> None:
    if not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"partition index must be an integer >= 0, not {value!r}")


def _check_count(instance: Any, attribute: Any, value: int) -> None:
    if not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"partition count must be an integer >= 1, not {value!r}")
    if instance.index >= value:
        raise ConfigurationError(f"partition index {instance.index} is not below count {value}")


@attrs.frozen(kw_only=True)
class Partition:
    """One partition of a distributed run: rows whose UID is not in it are invalid."""

    index: int = attrs.field(validator=_check_index)
    count: int = attrs.field(validator=_check_count)
    run_id: str | None = None

    def lock_name(self, sync_name: str) -> str:
        """The lock a partition run holds (the driver holds the sync's own name)."""
        return f"{sync_name}#partition-{self.index}-of-{self.count}"

    def owns(self, uid: str) -> bool:
        return partition_of(uid, self.count) == self.index


def new_run_id() -> str:
    """A run's id: 12 hex digits, random."""
    return uuid.uuid4().hex[:12]
