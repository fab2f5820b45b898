"""Results of queued tasks as flat rows: the CSV columns and the JSON export. Input is
the `TaskView`s of ``GET /api/tasks``.

Two columns come from the hardening of the queue: ``verifiable`` (False when a worker
that is not partisim ran the task: its row shows what it reported, without checksum)
and ``duplicates`` (runs of the task on other workers besides the recorded one).
``threads`` is how many threads the run used, ``threads_requested`` how many it asked
for and ``threads_reason`` why it used those. ``contended`` is True for a run measured
while the machine was oversubscribed ("medido con la máquina ocupada"; ``contended_by``
says why, see `sim.environment`); ``machine_id`` and ``cpu_model`` name where it ran, and
the columns after them copy the rest of its environment (CPUs, memory, software, engine
build, the other tasks beside it), so that a CSV alone says how each number was measured.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from typing import TypedDict

from partisim.protocol import QueueStatus, TaskView
from partisim.protocol.base import STATUS_LABELS
from partisim.sim.params import PARTICLES_KEY, SEED_KEY, STEPS_KEY

__all__ = [
    "COLUMNS",
    "FlatRow",
    "STATUS_LABELS",
    "WARNINGS_SEPARATOR",
    "flatten",
    "ordered",
    "to_csv",
    "to_json",
]


class _Conditions(TypedDict):
    """The flat columns of how and where a result was measured (None: unknown)."""

    threads_requested: int | None
    threads_reason: str | None
    contended: bool | None
    contended_by: str | None
    load_start: float | None
    load_end: float | None
    runner: str | None
    machine_id: str | None
    cpu_model: str | None
    logical_cpus: int | None
    usable_cpus: int | None
    memory_bytes: int | None
    python: str | None
    partisim: str | None
    model: int | None
    compiler: str | None
    flags: str | None
    openmp: bool | None
    wait_policy: str | None
    docker_image_id: str | None
    other_tasks: int | None
    worker_threads_max: int | None


class FlatRow(_Conditions):
    """A task as one flat row: the CSV columns (`COLUMNS`, in that order), None where
    unknown (an empty CSV cell)."""

    id: str
    batch: str
    status: QueueStatus
    engine: str
    particles: int | float | None
    steps: int | float | None
    seed: int | float | None
    worker: str | None
    attempts: int
    simulation_time: float | None
    execution_time: float | None
    particle_collisions: int | None
    wall_collisions: int | None
    kinetic_energy: float | None
    checksum: str | None
    error: str | None
    verify_of: str | None
    verifiable: bool
    duplicates: int
    threads: int | None
    warnings: str


COLUMNS = (
    "id",
    "batch",
    "status",
    "engine",
    "particles",
    "steps",
    "seed",
    "worker",
    "attempts",
    "simulation_time",
    "execution_time",
    "particle_collisions",
    "wall_collisions",
    "kinetic_energy",
    "checksum",
    "error",
    "verify_of",
    "verifiable",
    "duplicates",
    "threads",
    "warnings",
    "threads_requested",
    "threads_reason",
    "contended",
    "contended_by",
    "load_start",
    "load_end",
    "runner",
    "machine_id",
    "cpu_model",
    "logical_cpus",
    "usable_cpus",
    "memory_bytes",
    "python",
    "partisim",
    "model",
    "compiler",
    "flags",
    "openmp",
    "wait_policy",
    "docker_image_id",
    "other_tasks",
    "worker_threads_max",
)
#: the CSV cell of a task with several warnings joins them with this
WARNINGS_SEPARATOR = " | "


def flatten(task: TaskView) -> FlatRow:
    """One flat row per task (the CSV columns)."""
    params = task.params
    r = task.result or task.foreign_result  # a foreign one has no checksum, and may lack the rest
    return {
        "id": task.id,
        "batch": task.batch,
        "status": task.status,
        "engine": r.engine if r else task.benchmark,
        "particles": params.get(PARTICLES_KEY),
        "steps": params.get(STEPS_KEY),
        "seed": params.get(SEED_KEY),
        "worker": task.worker,
        "attempts": task.attempts,
        "simulation_time": r.simulation_time if r else None,
        "execution_time": r.execution_time if r else None,
        "particle_collisions": r.particle_collisions if r else None,
        "wall_collisions": r.wall_collisions if r else None,
        "kinetic_energy": r.kinetic_energy if r else None,
        "checksum": task.result.checksum if task.result else None,
        "error": task.error if task.status != "success" else None,
        "verify_of": task.verify_of,
        "verifiable": task.verifiable,
        "duplicates": task.duplicates,
        "threads": task.result.threads if task.result else None,
        "warnings": WARNINGS_SEPARATOR.join(task.result.warnings) if task.result else "",
        **_conditions(task),
    }


def _conditions(task: TaskView) -> _Conditions:
    """The flat columns of how and where a result was measured (None where unknown)."""
    r = task.result
    env = r.environment if r else None
    machine = env.machine if env else None
    build = machine.engine_build if machine else None
    return {
        "threads_requested": (r.threads_requested if r and r.threads_requested is not None else task.threads),
        "threads_reason": r.threads_reason if r else None,
        "contended": env.contended if env else None,
        "contended_by": " ".join(env.contended_by) if env and env.contended_by else None,
        "load_start": env.load_start if env else None,
        "load_end": env.load_end if env else None,
        "runner": r.runner if r else None,
        "machine_id": env.machine_id if env else None,
        "cpu_model": machine.cpu_model if machine else None,
        "logical_cpus": machine.logical_cpus if machine else None,
        "usable_cpus": machine.usable_cpus if machine else None,
        "memory_bytes": machine.memory_bytes if machine else None,
        "python": machine.python if machine else None,
        "partisim": machine.partisim if machine else None,
        "model": machine.model if machine else None,
        "compiler": build.compiler if build else None,
        "flags": build.flags if build else None,
        "openmp": build.openmp if build else None,
        "wait_policy": build.wait_policy if build else None,
        "docker_image_id": machine.docker_image_id if machine else None,
        "other_tasks": env.other_tasks if env else None,
        "worker_threads_max": env.worker_threads_max if env else None,
    }


def ordered(tasks: Iterable[TaskView]) -> list[TaskView]:
    # the API answers newest first; results read better in submission order
    return sorted(tasks, key=lambda t: (t.seq, t.id))


def to_csv(tasks: Iterable[TaskView]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for task in ordered(tasks):
        writer.writerow({k: ("" if v is None else v) for k, v in flatten(task).items()})
    return out.getvalue()


def to_json(tasks: Iterable[TaskView]) -> str:
    rows = [t.model_dump(mode="json") for t in ordered(tasks)]
    return json.dumps(rows, indent=2, ensure_ascii=False, allow_nan=False)
