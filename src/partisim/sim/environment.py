"""Where and how a result was measured: the machine, the software, the load (issue 20).

A result's `Environment` has a static part, `MachineEnvironment` (the same for every run
of one worker: CPU, memory, versions, engine build, runner), named by ``machine_id``, a
hash of its contents, and a dynamic part (load average at the start and the end, the
threads running on the machine during the run, the other tasks of the worker, the
threads asked for and used). `Environment.contended` says whether the machine was
oversubscribed while the run was measured ("medido con la máquina ocupada"), and
``contended_by`` why.

Oversubscribed, for a machine of ``cores`` usable CPUs, when any of these held:

- ``load``: the 1-minute load average at the start or the end exceeded the cores;
- ``runnable``: the threads ready to run on the machine (``/proc/loadavg``), sampled
  during the run, less the sampler itself, exceeded the cores (median of the samples);
  this sees a busy neighbour at once, where the load average takes a minute;
- ``threads``: the threads of this worker's tasks running at once exceeded the cores;
- ``other_task``: another task of this worker ran during part of the run.

Only the standard library reads the machine; nothing here starts a process.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import statistics
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = [
    "CONTENDED_LABEL",
    "host_id",
    "UNSTABLE_LABEL",
    "ContentionReason",
    "CONTENTION_TEXT",
    "EngineBuild",
    "MachineEnvironment",
    "Environment",
    "RunSample",
    "machine_facts",
    "usable_cpus",
    "runnable_threads",
    "free_cpus",
    "load_1min",
    "judge",
    "sampling",
]

#: what users read next to a contended result
CONTENDED_LABEL = "medido con la máquina ocupada"
#: what users read next to a group of repeats whose coefficient of variation exceeds 10%
UNSTABLE_LABEL = "inestable"

ContentionReason = Literal["load", "runnable", "threads", "other_task"]

#: each reason, as users read it
CONTENTION_TEXT: dict[str, str] = {
    "load": "carga media mayor que los núcleos",
    "runnable": "más hilos listos que núcleos",
    "threads": "hilos del worker en uso mayores que los núcleos",
    "other_task": "otra tarea del worker a la vez",
}


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class EngineBuild(_Frozen):
    """How the compiled engine was built: compiler, flags, OpenMP, and the OpenMP wait
    policy it runs with."""

    compiler: str = ""
    flags: str = ""
    openmp: bool = False
    openmp_version: int = 0  # the _OPENMP date (e.g. 201511), 0 without OpenMP
    wait_policy: str = ""


class MachineEnvironment(_Frozen):
    """The static part: the same for every result of one worker (``machine_id`` names it)."""

    machine_id: str = ""
    cpu_model: str
    logical_cpus: int
    #: the CPUs this process may run on (its affinity), as a list like "0-3,6"
    affinity: str
    usable_cpus: int
    memory_bytes: int | None = None
    system: str = ""
    python: str
    partisim: str = ""
    model: int = 0
    engine_build: EngineBuild | None = None
    runner: str = "process"  # "process" or "docker"
    docker_image: str | None = None
    docker_image_id: str | None = None

    def identified(self) -> MachineEnvironment:
        """This, with ``machine_id`` set to a hash of everything else."""
        data = self.model_dump(exclude={"machine_id"})
        digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
        return self.model_copy(update={"machine_id": digest})


class Environment(_Frozen):
    """The conditions of one measurement. ``machine`` is the static part (absent where
    it is stored once and referenced by ``machine_id``)."""

    machine_id: str
    machine: MachineEnvironment | None = None
    cores: int
    load_start: float | None = None
    load_end: float | None = None
    #: threads ready to run on the machine during the run, less the sampler: median and maximum
    runnable_median: float | None = None
    runnable_max: int | None = None
    #: threads of this worker's tasks running at once (this one's included), at most
    worker_threads_max: int = 1
    #: other tasks of this worker that ran during part of this one
    other_tasks: int = 0
    threads_requested: int = 1
    threads_used: int = 1
    threads_reason: str = "requested"
    contended: bool = False
    contended_by: list[ContentionReason] = []


def _cpu_list(cpus: set[int]) -> str:
    """{0, 1, 2, 3, 6} -> "0-3,6"."""
    out: list[str] = []
    ordered = sorted(cpus)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(out)


def _affinity() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on this platform
        return None


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity), else the logical CPUs."""
    cpus = _affinity()
    return len(cpus) if cpus else os.cpu_count() or 1


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Hardware", "cpu model") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "desconocido"


def _memory_bytes() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return None


def machine_facts(
    *,
    partisim: str,
    model: int,
    engine_build: EngineBuild | None,
    runner: str,
    docker_image: str | None = None,
    docker_image_id: str | None = None,
) -> MachineEnvironment:
    """The static part for this machine and this process, with its ``machine_id``."""
    cpus = _affinity()
    logical = os.cpu_count() or 1
    return MachineEnvironment(
        cpu_model=_cpu_model(),
        logical_cpus=logical,
        affinity=_cpu_list(cpus) if cpus else f"0-{logical - 1}",
        usable_cpus=len(cpus) if cpus else logical,
        memory_bytes=_memory_bytes(),
        system=f"{platform.system()} {platform.release()}".strip(),
        python=platform.python_version(),
        partisim=partisim,
        model=model,
        engine_build=engine_build,
        runner=runner,
        docker_image=docker_image,
        docker_image_id=docker_image_id,
    ).identified()


def load_1min() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def host_id() -> str:
    """The running kernel's boot id (Linux), or "" where there is none: workers that
    report the same one share one machine's CPUs (containers on one host included),
    whatever their addresses; two machines never share it, however alike they are."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            return fh.read().strip()[:64]
    except OSError:
        return ""


def runnable_threads() -> int | None:
    """Threads ready to run on the machine now (``/proc/loadavg``'s fourth field), or
    None where there is no such file."""
    try:
        with open("/proc/loadavg", encoding="ascii") as fh:
            return int(fh.read().split()[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        return None


def free_cpus(readings: int = 3) -> int | None:
    """CPUs of this process's affinity that no other thread is ready to use now: the usable
    CPUs less the runnable threads besides the caller (the least of a few readings, so a
    thread passing through is not counted), or None where that cannot be read."""
    found = [r for r in (runnable_threads() for _ in range(readings)) if r is not None]
    if not found:
        return None
    return max(0, usable_cpus() - max(0, min(found) - 1))


class RunSample:
    """What a worker gathers while one run goes on: load at the start and the end, the
    machine's runnable threads, and this worker's other tasks."""

    def __init__(self, threads: int) -> None:
        self.load_start = load_1min()
        self.load_end: float | None = None
        self.runnable: list[int] = []
        self.worker_threads_max = threads
        self.others: set[str] = set()

    def sample(self) -> None:
        """One reading of the runnable threads (the caller is the one extra thread)."""
        found = runnable_threads()
        if found is not None:
            self.runnable.append(max(0, found - 1))

    def sharing(self, threads_in_use: int, others: set[str]) -> None:
        """The worker's tasks running now: their threads (this one's included) and ids."""
        self.worker_threads_max = max(self.worker_threads_max, threads_in_use)
        self.others |= others

    def finish(self) -> None:
        self.load_end = load_1min()


@contextmanager
def sampling(sample: RunSample, interval: float = 0.05) -> Iterator[RunSample]:
    """Read the machine's runnable threads every ``interval`` seconds, from a thread, while
    the block runs in this one (a run in-process, as `partisim run` does); the load at the
    end is read on the way out."""
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            sample.sample()
            stop.wait(interval)

    watcher = threading.Thread(target=watch, name="partisim-sampling", daemon=True)
    watcher.start()
    try:
        yield sample
    finally:
        stop.set()
        watcher.join()
        sample.finish()


def judge(
    sample: RunSample,
    *,
    machine: MachineEnvironment,
    threads_requested: int,
    threads_used: int,
    threads_reason: str,
    include_machine: bool = True,
) -> Environment:
    """The `Environment` of a finished run, with its contention verdict."""
    cores = machine.usable_cpus
    reasons: list[ContentionReason] = []
    loads = [x for x in (sample.load_start, sample.load_end) if x is not None]
    if loads and max(loads) > cores:
        reasons.append("load")
    median = statistics.median(sample.runnable) if sample.runnable else None
    if median is not None and median > cores:
        reasons.append("runnable")
    if sample.worker_threads_max > cores:
        reasons.append("threads")
    if sample.others:
        reasons.append("other_task")
    return Environment(
        machine_id=machine.machine_id,
        machine=machine if include_machine else None,
        cores=cores,
        load_start=sample.load_start,
        load_end=sample.load_end,
        runnable_median=median,
        runnable_max=max(sample.runnable) if sample.runnable else None,
        worker_threads_max=sample.worker_threads_max,
        other_tasks=len(sample.others),
        threads_requested=threads_requested,
        threads_used=threads_used,
        threads_reason=threads_reason,
        contended=bool(reasons),
        contended_by=reasons,
    )
