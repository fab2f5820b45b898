"""The one place that starts and kills a computation: a base and two variants.

A `Runner` runs one `Job` and returns the engine's `SimResult`, or raises:
`TaskTimedOut` (the computation was killed at its deadline), `ParamsError` (the engine
refused it), `WorkerFailed` (it crashed), `WorkerUnavailable` (the runner cannot run
anything now). Cancelling the awaiting asyncio task kills the computation too.

- `ProcessRunner` (process.py): the killable child-process pool of
  `partisim.sim.isolated`, one child per slot.
- `DockerRunner` (docker.py): `docker run --rm --network none` with CPU, memory and pids
  limits, reading the JSON that `partisim run --json` prints in the container.

The caller (`tasks.TaskManager`) guarantees at most `capacity` slots in use at once
(a job of k threads takes k of them).
"""

from __future__ import annotations

from partisim.worker.runners.base import Job, OnStarted, RunHandle, Runner
from partisim.worker.runners.docker import DockerProbe, DockerRunner, DockerStatus
from partisim.worker.runners.process import ProcessRunner

__all__ = [
    "Job",
    "OnStarted",
    "RunHandle",
    "Runner",
    "ProcessRunner",
    "DockerRunner",
    "DockerProbe",
    "DockerStatus",
    "select_runner",
]


async def select_runner(
    kind: str,
    probe: DockerProbe,
    *,
    capacity: int,
    task_memory_mb: int | None = None,
    docker_cpus: float = 1.0,
    docker_memory: str = "1g",
    docker_pids: int = 256,
    worker_id: str = "worker",
) -> tuple[Runner, str | None]:
    """The runner for `--runner auto|process|docker`, and a note when auto fell back."""

    def docker() -> DockerRunner:
        return DockerRunner(probe, cpus=docker_cpus, memory=docker_memory, pids=docker_pids, worker_id=worker_id)

    if kind == "docker":
        return docker(), None
    if kind == "auto":
        status = await probe.check(max_age=0.0)
        if status.available and status.image_available:
            return docker(), "auto: Docker y la imagen están disponibles"
        note = f"auto: {status.error}; se usa el runner process"
        return ProcessRunner(capacity, task_memory_mb=task_memory_mb), note
    return ProcessRunner(capacity, task_memory_mb=task_memory_mb), None
