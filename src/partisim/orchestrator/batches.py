"""What the CLI and the menu do with serve's client: submit a file or a sweep, wait for a
batch, verify a batch on another worker, save an export, list and cancel pending tasks."""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from partisim.errors import BatchNotFound, PartisimError, ServerError
from partisim.files import atomic_writer
from partisim.protocol import Submitted, Summary, TaskView
from partisim.serve.client import (
    EXPORT_FORMATS,
    Check,
    Export,
    ServerClient,
    TaskObject,
    TaskSpec,
    compare_checksums,
    load_task_document,
    parse_engine_list,
    parse_int_values,
    step_warnings,
    sweep,
)
from partisim.sim.params import PARTICLES_KEY, SEED_KEY, STEPS_KEY, ApiParams

__all__ = [
    "task_objects",
    "submit_file",
    "submit_sweep",
    "require_batch",
    "wait_batch",
    "verify_batch",
    "save_export",
    "pending_tasks",
    "Cancelled",
    "cancel_tasks",
]

#: the states a task can still be cancelled in
PENDING = ("queued", "running")


def task_objects(specs: list[TaskSpec]) -> list[TaskObject]:
    """Validated specs -> the task objects of ``POST /api/tasks``. The copies of one task
    (``repeat``: the same object in a row) go back as one object with ``repeat``, so a
    labelled task stays one label."""
    objects: list[TaskObject] = []
    previous: TaskSpec | None = None
    for s in specs:
        if s is previous:
            objects[-1]["repeat"] = objects[-1].get("repeat", 1) + 1
            continue
        previous = s
        task: TaskObject = {"benchmark": s.benchmark, "params": s.params}
        if s.timeout:
            task["timeout"] = s.timeout
        if s.threads > 1:
            task["threads"] = s.threads
        if s.priority:
            task["priority"] = s.priority
        if s.label is not None:
            task["label"] = s.label
        objects.append(task)
    return objects


def _with_warnings(answer: Submitted, specs: list[TaskSpec], also: list[str] | None = None) -> Submitted:
    """The answer with the coarse-step warnings of ``specs`` (and ``also``: what the file
    deserves), worked out here too: a serve of an older version answers none."""
    found = list(dict.fromkeys([*(also or []), *answer.warnings, *step_warnings(specs)]))
    return answer if found == answer.warnings else answer.model_copy(update={"warnings": found})


def submit_file(client: ServerClient, path: str, *, batch: str | None = None, priority: int | None = None) -> Submitted:
    """Validate a task file here (clear errors with the file name), then queue it.
    ``priority``: for every task of the file, instead of its own."""
    document = load_task_document(path)
    specs = document.specs
    if priority is not None:
        specs = _prioritised(specs, priority)
    return _with_warnings(client.submit(task_objects(specs), batch=batch), specs, document.warnings)


def _prioritised(specs: list[TaskSpec], priority: int) -> list[TaskSpec]:
    """``specs`` at ``priority``, keeping the copies of one task one object."""
    changed: dict[int, TaskSpec] = {}
    return [changed.setdefault(id(s), dataclasses.replace(s, priority=priority)) for s in specs]


#: how `partisim sweep` names the parameters it sweeps
SWEEP_FLAGS = {PARTICLES_KEY: "--particles", STEPS_KEY: "--steps", SEED_KEY: "--seeds"}


def submit_sweep(
    client: ServerClient,
    *,
    engines: str,
    particles: str,
    steps: str,
    seeds: str,
    repeat: int = 1,
    timeout: float | None = None,
    threads: int = 1,
    batch: str | None = None,
    params: ApiParams | None = None,
    names: dict[str, str] | None = None,
    priority: int | None = None,
) -> Submitted:
    """The cartesian product engines x particles x steps x seeds, as one batch (each
    simulation on ``threads`` threads); ``params`` (API names) are the same for every
    task, ``names`` what the user called them."""
    specs = sweep(
        parse_engine_list(engines),
        parse_int_values(particles, "--particles"),
        parse_int_values(steps, "--steps"),
        parse_int_values(seeds, "--seeds"),
        repeat=repeat,
        timeout=timeout,
        threads=threads,
        params=params,
        names={**SWEEP_FLAGS, **(names or {})},
    )
    if priority is not None:
        specs = _prioritised(specs, priority)
    return _with_warnings(client.submit(task_objects(specs), batch=batch), specs)


def require_batch(client: ServerClient, batch: str) -> Summary:
    """The batch's summary; `BatchNotFound` (naming the latest batches) when the queue
    has no batch with that id. wait, results and report all ask this first."""
    state = client.summary(batch=batch)
    if state.total == 0:
        raise BatchNotFound(batch, [b.batch for b in client.batches(limit=3)])
    return state


def wait_batch(
    client: ServerClient,
    batch: str | None,
    *,
    timeout: float | None = None,
    on_progress: Callable[[Summary], None] = lambda _: None,
) -> Summary:
    """Block until the batch has nothing queued or running; ``on_progress`` sees every
    summary on the way. Raises `TimeoutError` after ``timeout`` seconds, `BatchNotFound`
    for an unknown batch."""
    deadline = None if timeout is None else time.monotonic() + timeout
    state = require_batch(client, batch) if batch else client.summary()
    if state.total == 0:
        raise PartisimError("la cola está vacía")
    while True:
        on_progress(state)
        if state.done:
            return state
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise TimeoutError(batch or "cola")
        wait = 2.0 if left is None else max(0.05, min(2.0, left))
        state = client.summary(batch=batch, wait=wait)


def verify_batch(
    client: ServerClient,
    batch: str | None,
    count: int,
    *,
    timeout: float | None = None,
    on_progress: Callable[[Summary], None] = lambda _: None,
) -> list[Check]:
    """Run ``count`` sampled successful tasks again on another worker; compare checksums."""
    answer = client.verify(count, batch=batch)
    wait_batch(client, answer.batch, timeout=timeout, on_progress=on_progress)
    reruns = list(client.iter_tasks(batch=answer.batch))
    originals = {p.original: client.task(p.original) for p in answer.pairs}
    return compare_checksums(originals, reruns)


class _CsvRecords:
    """Counts the records of a CSV text fed in pieces: line ends outside quotes (a quoted
    field may hold line ends; an escaped quote is two quotes, so the state is right)."""

    def __init__(self) -> None:
        self.quoted = False
        self.records = 0

    def feed(self, text: str) -> None:
        for k, part in enumerate(text.split('"')):
            if k:
                self.quoted = not self.quoted
            if not self.quoted:
                self.records += part.count("\n")


def save_export(
    client: ServerClient,
    output: str | Path | None,
    fmt: str,
    *,
    status: str | None = None,
    batch: str | None = None,
    originals: bool = True,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> int:
    """Write the export of a selection as it arrives: to ``output`` atomically (a hidden
    file renamed at the end; on any error the target is left as it was) or to stdout
    (None). ``fmt`` is csv, json (an array, one task per line) or ndjson. ``originals``
    leaves out verification re-runs, unless the selection holds nothing else.
    ``on_progress(rows, total)`` follows it. Returns the number of rows written.

    Raises `PartisimError` when the selection is empty, and when fewer rows arrived
    than the server announced (never a short file that looks complete)."""
    wire = EXPORT_FORMATS[fmt]
    if originals:
        with client.export(wire, status=status, batch=batch, originals=True) as export:
            if export.total:
                return _save(export, output, fmt, status, on_progress)
    with client.export(wire, status=status, batch=batch) as export:
        if export.total == 0:
            raise PartisimError(f"no hay tareas en el lote {batch}" if batch else "la cola está vacía")
        return _save(export, output, fmt, status, on_progress)


def _save(
    export: Export, output: str | Path | None, fmt: str, status: str | None, on_progress: Callable[[int, int], None]
) -> int:
    on_progress(0, export.total)
    if output is None:
        rows = _copy_export(export, fmt, sys.stdout, on_progress)
        _check_complete(rows, export.total, status)
        return rows
    with atomic_writer(output) as handle:
        rows = _copy_export(export, fmt, handle, on_progress)
        _check_complete(rows, export.total, status)  # inside: a short export is never renamed in
    return rows


def _check_complete(rows: int, total: int, status: str | None) -> None:
    # without a status filter the set of rows is fixed when the export starts
    if status is None and rows != total:
        raise PartisimError(f"la exportación trajo {rows} de {total} tareas; no se escribió el archivo")


def _copy_export(export: Export, fmt: str, out: IO[str], on_progress: Callable[[int, int], None]) -> int:
    rows = 0
    if fmt == "json":  # NDJSON lines -> one JSON array, one task per line
        out.write("[")
        for line in export.lines():
            out.write(("\n" if rows == 0 else ",\n") + line)
            rows += 1
            if rows % 1000 == 0:
                on_progress(rows, export.total)
        out.write("\n]\n")
    elif fmt == "csv":
        counter = _CsvRecords()
        for chunk in export.chunks():
            out.write(chunk)
            counter.feed(chunk)
            on_progress(max(0, counter.records - 1), export.total)  # minus the header
        rows = max(0, counter.records - 1)
    else:
        for chunk in export.chunks():
            out.write(chunk)
            rows += chunk.count("\n")
            on_progress(rows, export.total)
    on_progress(rows, export.total)
    return rows


def pending_tasks(client: ServerClient, batch: str | None = None) -> list[TaskView]:
    """The tasks of the queue (or of one batch) that have not finished: queued and running,
    oldest first."""
    tasks = [t for status in PENDING for t in client.iter_tasks(status=status, batch=batch)]
    return sorted(tasks, key=lambda t: t.seq)


@dataclass
class Cancelled:
    """What a cancel request did: tasks cancelled (with the state they were in), and
    tasks left as they were, with the server's reason."""

    cancelled: list[tuple[str, str]] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)


def cancel_tasks(client: ServerClient, ids: Sequence[str]) -> Cancelled:
    """Cancel each task of ``ids`` (a running one is stopped on its worker); a task that
    already finished or does not exist is reported, not an error of the whole request."""
    done = Cancelled()
    for task_id in ids:
        try:
            answer = client.cancel(task_id)
        except ServerError as exc:
            if exc.status_code not in (404, 409):
                raise
            done.refused.append((task_id, exc.message))
            continue
        done.cancelled.append((task_id, answer.previous))
    return done
