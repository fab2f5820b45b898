"""The executor seam: where the scheduler hands over a task attempt.

The scheduler owns the queue side of a task (which task is next, its attempts, the
retry policy, the final state). An executor owns the computing side: its members and
their free slots, where an attempt runs, how it is stopped, and how its outcome comes
back. The queue, the retry policy, results and the dashboard never know which
executor ran a task.

Life of an attempt:

1. ``place(task)`` reserves slots and says where (`Placement`); None when nothing is
   free for this task. A task of k threads takes k slots of its member (fewer where the
   member cannot use that many: ``Placement.slots``). An executor that does its own
   placement (Dask) answers with the cluster as the member and learns the real worker
   later. Each scheduling round starts with ``round_start()``; within a round an
   executor may hold back a member for a task that waits for enough free slots there,
   so that the tasks behind it do not take each slot as it frees (no starvation).
2. The scheduler claims the task in the queue (attempt number, deadline); if the claim
   is lost (cancelled meanwhile) it calls ``unplace``.
3. ``launch(attempt)`` starts it. Exactly one outcome comes back through the callback
   given to ``bind``: an `ExecuteResult`, or a `PartisimError` whose class says what
   kind of failure it was (`TaskRejected` 4xx, `WorkerUnavailable`, `TaskTimedOut`,
   `WorkerFailed`). ``cancel`` stops an attempt; its outcome is then never delivered.
   A success from a worker that is not partisim comes back as a `ForeignResult`.
4. When an executor learns that a member ran a task to the end although that run's
   answer was given up on (a read timeout, then a retry elsewhere), it calls
   ``report_run(task_id, member)``: the queue counts it among the task's duplicates.
5. After a restart, ``resume(task)`` follows a task the queue says is running there;
   False means the executor cannot follow it and the scheduler puts it back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from partisim.errors import PartisimError
from partisim.protocol import MemberView, TaskResult
from partisim.serve.queue.task import Task

__all__ = ["Placement", "Attempt", "Outcome", "OutcomeHandler", "RunHandler", "Executor"]


@dataclass(frozen=True)
class Placement:
    """Reserved slots: the member that will run the attempt, its address, and how many
    of its slots the attempt takes (the threads it will run on there). ``units``: what
    it takes of `Executor.free_slots` when that counts finer than slots (a tiny attempt
    sent in a batch takes one unit of its batch's slot); None: ``slots``. ``batched``:
    it rides in a batch that holds the slot (``slots`` is then 0)."""

    member: str
    address: str
    slots: int = 1
    units: int | None = None
    batched: bool = False

    @property
    def takes(self) -> int:
        """What it takes of `Executor.free_slots`."""
        return self.slots if self.units is None else self.units


@dataclass(frozen=True)
class Attempt:
    """One try of one task on one placement, as the queue numbered it."""

    task: Task
    number: int
    placement: Placement
    deadline: float  # epoch seconds: past it the attempt has timed out

    @property
    def task_id(self) -> str:
        return self.task.id


#: what comes back from an attempt
Outcome = TaskResult | PartisimError
#: ``handler(attempt, outcome, worker)``; ``worker`` names who really ran it when the
#: executor learned it only afterwards (None: the placement's member)
OutcomeHandler = Callable[[Attempt, Outcome, str | None], None]
#: ``handler(task_id, member)``: ``member`` ran the task although its answer was not used
RunHandler = Callable[[str, str], None]


class Executor(ABC):
    """Runs task attempts somewhere; see the module docstring for the protocol."""

    #: "http" or "dask": shown by the dashboard and the logs
    kind: str = "?"

    def __init__(self) -> None:
        self._on_outcome: OutcomeHandler | None = None
        self._on_run: RunHandler | None = None
        self._wake: Callable[[], None] = lambda: None

    def bind(self, on_outcome: OutcomeHandler, wake: Callable[[], None], on_run: RunHandler | None = None) -> None:
        """Where outcomes go, how to ask the scheduler for a round (a slot freed, a
        member came back), and where runs nobody waited for are reported."""
        self._on_outcome = on_outcome
        self._wake = wake
        self._on_run = on_run

    def report_run(self, task_id: str, member: str) -> None:
        if self._on_run is not None:
            self._on_run(task_id, member)

    def deliver(self, attempt: Attempt, outcome: Outcome, worker: str | None = None) -> None:
        if self._on_outcome is not None:
            self._on_outcome(attempt, outcome, worker)

    async def start(self) -> None:
        """Connect, start monitoring members."""

    async def stop(self, grace: float) -> None:
        """Give running attempts ``grace`` seconds to deliver, then abandon them (the
        next start resumes them) and release resources."""

    @abstractmethod
    def members(self) -> list[MemberView]:
        """Every member with its state and slots, for the API and the dashboard."""

    def round_start(self) -> None:
        """A scheduling round begins (members held back in the last one are free again)."""

    @abstractmethod
    def free_slots(self) -> int:
        """How many more slots are free now, over all members (a task of k threads
        takes k); slots held back for a waiting task are not free."""

    @abstractmethod
    def bound(self, task: Task) -> float:
        """Longest (seconds) an attempt of ``task`` may take before it counts as timed out."""

    @abstractmethod
    def place(self, task: Task) -> Placement | None:
        """Reserve slots for ``task`` (its threads), or None if no member has them now."""

    def unplaceable(self, task: Task) -> str | None:
        """Why no member of this executor could ever run ``task`` (a Spanish sentence),
        or None while one might: the scheduler then fails it at once instead of leaving
        it queued. Asked only after `place` said None."""
        return None

    def waiting(self) -> dict[str, tuple[str, str]]:
        """Queued tasks that only members now down could run, found in the last round:
        ``{task_id: (batch, why)}``, for the summary."""
        return {}

    @abstractmethod
    def unplace(self, placement: Placement) -> None:
        """Give back reserved slots that will not be launched."""

    @abstractmethod
    def launch(self, attempt: Attempt) -> None:
        """Start the attempt (non-blocking); its outcome comes through `deliver`."""

    @abstractmethod
    def cancel(self, task_id: str, member: str | None, address: str | None) -> None:
        """Stop the attempt of ``task_id`` wherever it runs and free its slot now."""

    @abstractmethod
    def resume(self, task: Task) -> bool:
        """Follow a task left running by a previous ``serve``; False if it cannot be."""

    def running(self, task_id: str) -> bool:
        """Whether an attempt of ``task_id`` is being followed here."""
        return False

    def active_members(self) -> int:
        return sum(1 for m in self.members() if m.state == "active")
