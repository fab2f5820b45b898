"""A full disk under the queue's database: recognised, and told apart from other errors.

SQLite answers ``database or disk is full`` (result code 13) and rolls the transaction
back by itself; nothing was written. The API answers 507 (`StorageFull`), and the next
write succeeds once there is space again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from partisim.errors import StorageFull

__all__ = ["is_disk_full", "storage_full_as"]

#: SQLite's result code for a full disk (or database)
_SQLITE_FULL = 13


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite saying the disk (or the database) is full."""
    if not isinstance(exc, sqlite3.Error):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    return code == _SQLITE_FULL or "disk is full" in str(exc) or "database or disk is full" in str(exc)


@contextmanager
def storage_full_as(path: Path) -> Iterator[None]:
    """A full disk inside the block becomes `StorageFull` (507 in the API); nothing was written."""
    try:
        yield
    except sqlite3.Error as exc:
        if is_disk_full(exc):
            raise StorageFull(str(path)) from None
        raise
