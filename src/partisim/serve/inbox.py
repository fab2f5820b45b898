"""The inbox: a folder watched by ``serve``; each JSON task file dropped there is queued.

A file whose tasks were queued moves to ``processed/``; a file that cannot be queued
moves to ``failed/`` next to ``<name>.error.txt`` saying why, in Spanish. The batch id
is derived from the file's name and content, so a file queued just before a crash
(and not yet moved) is not queued twice after the restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path

from partisim.errors import ParamsError
from partisim.files import write_atomic
from partisim.serve.queue.specs import decode_json, read_tasks
from partisim.serve.queue.store import TaskQueue

__all__ = ["Inbox", "InboxOutcome"]

log = logging.getLogger(__name__)

#: a file younger than this whose JSON does not parse may still be being written
SETTLE_S = 2.0


class InboxOutcome:
    """What happened to one file (for logs and tests)."""

    def __init__(self, name: str, ok: bool, detail: str, batch: str | None = None, count: int = 0) -> None:
        self.name, self.ok, self.detail, self.batch, self.count = name, ok, detail, batch, count

    def __repr__(self) -> str:
        return f"InboxOutcome({self.name!r}, ok={self.ok}, batch={self.batch!r}, count={self.count})"


def _batch_for(path: Path, content: bytes) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem)[:32] or "archivo"
    return f"inbox-{stem}-{hashlib.sha256(content).hexdigest()[:8]}"


def _free_name(folder: Path, name: str) -> Path:
    target = folder / name
    if not target.exists():
        return target
    stem, suffix = Path(name).stem, Path(name).suffix
    return folder / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 10**6:06d}{suffix}"


class Inbox:
    """Polls ``folder`` for ``*.json`` files and queues their tasks."""

    def __init__(
        self,
        folder: str | Path,
        queue: TaskQueue,
        *,
        interval: float = 0.5,
        on_enqueued: Callable[[], None] | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.processed = self.folder / "processed"
        self.failed = self.folder / "failed"
        self.queue = queue
        self.interval = interval
        self.on_enqueued = on_enqueued
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._loop_ref: asyncio.AbstractEventLoop | None = None

    def _notify(self) -> None:
        if self.on_enqueued is None:
            return
        if self._loop_ref is not None:  # scan() runs in a thread while serving
            self._loop_ref.call_soon_threadsafe(self.on_enqueued)
        else:
            self.on_enqueued()

    def prepare(self) -> None:
        for folder in (self.folder, self.processed, self.failed):
            folder.mkdir(parents=True, exist_ok=True)

    def scan(self) -> list[InboxOutcome]:
        """Handle every settled file now; returns what happened to each."""
        outcomes = []
        for path in sorted(self.folder.glob("*.json")):
            if path.name.startswith(".") or not path.is_file():
                continue
            outcome = self._handle(path)
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes

    def _handle(self, path: Path) -> InboxOutcome | None:
        try:
            content = path.read_bytes()
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            return None  # taken away meanwhile
        try:
            data = decode_json(content.decode("utf-8"), path.name)
        except UnicodeDecodeError:
            return self._reject(path, "el archivo no es texto UTF-8")
        except ParamsError as exc:
            if time.time() - mtime < SETTLE_S:
                return None  # maybe still being written: look again later
            return self._reject(path, exc.message)
        try:
            document = read_tasks(data, path.name)
        except ParamsError as exc:
            return self._reject(path, exc.message)
        specs = document.specs
        for warning in document.warnings:
            log.warning("bandeja: %s", warning)
        batch = _batch_for(path, content)
        if not self.queue.batch_exists(batch):
            self.queue.enqueue(specs, batch)
            self._notify()
        path.replace(_free_name(self.processed, path.name))
        log.info("bandeja: %s -> %d tareas en el lote %s", path.name, len(specs), batch)
        return InboxOutcome(path.name, True, "; ".join(["en cola", *document.warnings]), batch, len(specs))

    def _reject(self, path: Path, reason: str) -> InboxOutcome:
        target = _free_name(self.failed, path.name)
        # the reason is complete before the file shows up in failed/, so whoever sees
        # the rejected file can read why
        write_atomic(target.with_name(target.name + ".error.txt"), f"No se pudo encolar {path.name}:\n{reason}\n")
        path.replace(target)
        log.warning("bandeja: %s rechazado: %s", path.name, reason)
        return InboxOutcome(path.name, False, reason)

    async def start(self) -> None:
        self.prepare()
        self._stopping = asyncio.Event()
        self._loop_ref = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._loop(), name="partisim-inbox")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await asyncio.to_thread(self.scan)
            except Exception:  # a bad file or a full disk must not stop serve
                log.exception("error al revisar la bandeja %s", self.folder)
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=self.interval)
            except asyncio.TimeoutError:
                pass
