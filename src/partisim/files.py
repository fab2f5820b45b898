"""Writing files so that a reader never sees half of one.

Every file partisim hands to a user (an inbox ``.error.txt``, a CSV/JSON export, a
report PNG) is written to a hidden sibling and renamed over the target: on POSIX and
Windows the rename is atomic, so a crash, a full disk or a concurrent reader sees the
old file or the new one, never a truncated one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from partisim.errors import OutputError, explain_os_error

__all__ = ["write_atomic"]


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
