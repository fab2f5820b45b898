"""Writing files so that a reader never sees half of one.

Every file partisim hands to a user (an inbox ``.error.txt``, a CSV/JSON export, a
report PNG, an animation) is written to a hidden sibling and renamed over the target:
on POSIX and Windows the rename is atomic, so a crash, a full disk or a concurrent
reader sees the old file or the new one, never a truncated one.

The hidden sibling is made private (``mkstemp``: 0600); before the rename it gets the
mode the user expects: the replaced file's own, or for a new file what ``open`` would
have given it under the process umask (0644 under the usual 022).
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from partisim.errors import OutputError, explain_os_error

__all__ = ["write_atomic", "atomic_writer", "atomic_path"]


def write_atomic(path: str | Path, data: str | bytes, *, encoding: str = "utf-8") -> Path:
    """Write ``data`` to ``path`` atomically; returns the path written.

    Raises `OutputError` naming the path when it cannot be written (missing folder,
    no permission, full disk); the target is then left as it was.
    """
    target = Path(path)
    payload = data.encode(encoding) if isinstance(data, str) else data
    with atomic_path(target) as hidden, open(hidden, "wb") as handle:
        handle.write(payload)
    return target


@contextmanager
def atomic_writer(path: str | Path, *, encoding: str = "utf-8") -> Iterator[IO[str]]:
    """A text file to write as data arrives (a streamed export): it is a hidden sibling
    until the block ends, then renamed over ``path``. If the block raises, ``path`` is
    left as it was and the partial file is removed.

    Raises `OutputError` naming the path when it cannot be written."""
    with atomic_path(path) as hidden, open(hidden, "w", encoding=encoding, newline="") as handle:
        yield handle


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A hidden sibling of ``path`` (same suffix: a writer that picks its format by the
    name, as ffmpeg does, picks the target's) for the block to write; once the block
    ends it is synced to disk, given the target's mode and renamed over ``path``. If the
    block raises, ``path`` is left as it was and the sibling is removed.

    Raises `OutputError` naming the path when it cannot be written."""
    target = Path(path)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{target.suffix}", dir=target.parent)
        os.close(fd)
    except OSError as exc:
        raise OutputError(f"no se pudo escribir {target}: {explain_os_error(exc)}") from exc
    hidden = Path(name)
    try:
        yield hidden
        _sync(hidden)
        os.chmod(hidden, _mode_for(target))
        os.replace(hidden, target)
    except OSError as exc:
        _discard(hidden)
        raise OutputError(f"no se pudo escribir {target}: {explain_os_error(exc)}") from exc
    except BaseException:
        _discard(hidden)
        raise


def _sync(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _mode_for(target: Path) -> int:
    """The replaced file's permission bits, or a new file's under the umask."""
    try:
        mode = target.stat().st_mode
    except OSError:
        mode = 0
    if stat.S_ISREG(mode):
        return stat.S_IMODE(mode)
    return 0o666 & ~_umask()


def _umask() -> int:
    # Linux says it in /proc without changing it; os.umask can only be read by setting
    # it, which for an instant would apply to files other threads create
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _discard(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
