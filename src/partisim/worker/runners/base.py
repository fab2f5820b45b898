"""What every runner is: a `Job` in, the engine's `SimResult` out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypedDict

from partisim.sim import SimParams, SimResult

__all__ = ["Job", "Runner", "RunHandle", "OnStarted"]


class RunHandle(TypedDict, total=False):
    """What identifies a running computation: its process or its container."""

    pid: int
    container: str


OnStarted = Callable[[RunHandle], None]


@dataclass(frozen=True)
class Job:
    task_id: str
    engine: str
    params: SimParams
    timeout: float
    threads: int = 1  # already capped by the caller


class Runner(ABC):
    name: str = "?"

    async def start(self) -> None:
        """Get ready to run (e.g. warm a process pool)."""

    async def ensure_ready(self) -> None:
        """Raise `WorkerUnavailable` if no job could be run now."""

    @abstractmethod
    async def run(self, job: Job, on_started: OnStarted | None = None) -> SimResult:
        """Run one job; `on_started` receives what identifies the computation (pid, container).

        Raises `TaskTimedOut` (killed at its deadline), `ParamsError` (the engine refused
        the parameters), `WorkerFailed` (it crashed) or `WorkerUnavailable` (nothing can
        run now). Cancelling the awaiting asyncio task kills the computation too."""

    async def close(self) -> None:
        """Kill whatever still runs and release resources."""
