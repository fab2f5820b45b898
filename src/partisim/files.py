"""Writing files so that a reader never sees half of one.

Every file partisim hands to a user (an inbox ``.error.txt``, a CSV/JSON export, a
report PNG) is written to a hidden sibling and renamed over the target: on POSIX and
Windows the rename is atomic, so a crash, a full disk or a concurrent reader sees the
old file or the new one, never a truncated one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from partisim.errors import OutputError, explain_os_error

__all__ = ["write_atomic", "atomic_writer"]


def write_atomic(path: str | Path, data: str | bytes, *, encoding: str = "utf-8") -> Path:
    """Write ``data`` to ``path`` atomically; returns the path written.

    Raises `OutputError` naming the path when it cannot be written (missing folder,
    no permission, full disk); the target is then left as it was.
    """
    target = Path(path)
    payload = data.encode(encoding) if isinstance(data, str) else data
    try:
        _replace_with(target, payload)
    except OSError as exc:
        raise OutputError(f"no se pudo escribir {target}: {explain_os_error(exc)}") from exc
    return target


def _replace_with(target: Path, payload: bytes) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise


@contextmanager
def atomic_writer(path: str | Path, *, encoding: str = "utf-8") -> Iterator[IO[str]]:
    """A text file to write as data arrives (a streamed export): it is a hidden sibling
    until the block ends, then renamed over ``path``. If the block raises, ``path`` is
    left as it was and the partial file is removed.

    Raises `OutputError` naming the path when it cannot be written."""
    target = Path(path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise OutputError(f"no se pudo escribir {target}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline="") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except OSError as exc:
        _discard(tmp_name)
        raise OutputError(f"no se pudo escribir {target}: {exc.strerror or exc}") from exc
    except BaseException:
        _discard(tmp_name)
        raise


def _discard(name: str) -> None:
    try:
        os.unlink(name)
    except FileNotFoundError:
        pass
