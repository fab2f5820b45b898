"""The queue's database file and what can go wrong with it outside SQLite's own checks:
a file of another program (refused untouched), a full disk (recognised, told apart).

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

__all__ = ["is_disk_full", "quick_check", "refuse_foreign", "storage_full_as"]

#: SQLite's result code for a full disk (or database)
_SQLITE_FULL = 13


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite saying the disk (or the database) is full."""
    if not isinstance(exc, sqlite3.Error):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    return code == _SQLITE_FULL or "disk is full" in str(exc)  # also "database or disk is full"


@contextmanager
def storage_full_as(path: Path) -> Iterator[None]:
    """A full disk inside the block becomes `StorageFull` (507 in the API); nothing was written."""
    try:
        yield
    except sqlite3.Error as exc:
        if is_disk_full(exc):
            raise StorageFull(str(path)) from None
        raise


def refuse_foreign(db: sqlite3.Connection) -> None:
    """A non-empty database without a ``tasks`` table is another program's: refuse it
    (`sqlite3.DatabaseError`, naming what it holds) before anything is written to it."""
    others = [
        str(r[0])
        for r in db.execute("SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name LIMIT 4")
    ]
    if others:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        raise sqlite3.DatabaseError(f"no tiene la tabla tasks de partisim; tiene {shown}")


def quick_check(db: sqlite3.Connection) -> None:
    """SQLite's own integrity check (``PRAGMA quick_check``): `sqlite3.DatabaseError` naming the damage."""
    problems = [str(r[0]) for r in db.execute("PRAGMA quick_check(3)").fetchall()]
    if problems != ["ok"]:
        lines = [x.strip() for p in problems for x in p.splitlines() if x.strip() and not x.startswith("***")]
        raise sqlite3.DatabaseError("; ".join(lines)[:300] or "comprobación de integridad fallida")
