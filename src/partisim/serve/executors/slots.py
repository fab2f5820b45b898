"""The HTTP fleet's slot accounting, with no I/O: which worker gets a task, how many
of its slots are taken, which worker is suspended or held back for a waiting task.

A plain class that `HttpFleet` drives and a test drives directly, without a network
or an event loop (as distributed's ``worker_state_machine``). The fleet describes each
candidate worker as a `Seat` (its slots, whether it may take work now, the slots the
task would take there); the book keeps the counts.

Placement: among the usable seats, the one with the most free slots among those with
enough of them; ties go to the worker given the fewest tasks, so equal workers share
the work evenly. A verification run never goes to the worker of its original
(``exclude``), and a retry avoids the worker that failed it while another one is alive
(``avoid``). A task that fits nowhere holds back, until the next round, the worker
closest to having its slots, so later tasks leave that worker's slots alone.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

__all__ = ["Seat", "SlotBook"]


@dataclass(frozen=True)
class Seat:
    """One worker as the placement of one task sees it."""

    id: str
    limit: int  # its slots
    usable: bool  # active and not suspended
    need: int = 1  # the slots the task takes there


class SlotBook:
    """Slots in use, tasks given, suspensions and holds of the fleet's workers."""

    def __init__(self) -> None:
        self.inflight: defaultdict[str, int] = defaultdict(int)  # slots in use, by worker
        self.dispatched: defaultdict[str, int] = defaultdict(int)  # tasks given, by worker
        self._suspended: dict[str, float] = {}  # worker -> when it last failed to connect
        self._held: dict[str, str] = {}  # worker -> the waiting task it is held for (this round)

    # -- suspension --

    def suspend(self, member: str, at: float) -> None:
        """The worker refused a connection at ``at``: no work until it answers again."""
        self._suspended[member] = at

    def suspended(self, member: str, last_seen: float | None) -> bool:
        """Whether the worker is suspended; an answer seen after the failure lifts it."""
        at = self._suspended.get(member)
        if at is not None and (last_seen or 0.0) > at:
            del self._suspended[member]
            return False
        return at is not None

    # -- free slots --

    def free(self, seat: Seat) -> int:
        """Its free slots (none while it is not usable)."""
        return max(0, seat.limit - self.inflight[seat.id]) if seat.usable else 0

    def open(self, seat: Seat, task_id: str | None = None) -> int:
        """Free slots others may take: none on a worker held for another task."""
        held = self._held.get(seat.id)
        return 0 if held is not None and held != task_id else self.free(seat)

    def round_start(self) -> None:
        """A new scheduling round: holds are decided again."""
        self._held.clear()

    # -- placement --

    def place(
        self, task_id: str, seats: list[Seat], *, exclude: str | None = None, avoid: str | None = None
    ) -> Seat | None:
        """The seat that takes the task (its slots and one dispatch counted now), or None
        (and perhaps a worker held back for it)."""
        usable = [s for s in seats if s.usable and self._held.get(s.id, task_id) == task_id]
        if exclude is not None and len(seats) > 1:
            usable = [s for s in usable if s.id != exclude]  # a verification: another machine
        if avoid is not None and any(s.id != avoid and s.usable for s in seats):
            usable = [s for s in usable if s.id != avoid]
        fits = [s for s in usable if self.free(s) >= s.need]
        if not fits:
            self._hold(task_id, usable)
            return None
        best = max(fits, key=lambda s: (self.free(s), -self.dispatched[s.id]))
        self.take(best.id, best.need)
        return best

    def _hold(self, task_id: str, usable: list[Seat]) -> None:
        waiting = [s for s in usable if s.need > 1 and s.id not in self._held]
        if waiting:
            best = max(waiting, key=lambda s: (self.free(s), s.limit, -self.dispatched[s.id]))
            self._held[best.id] = task_id

    def take(self, member: str, slots: int) -> None:
        """A task placed (or found running) there: its slots are in use, one more dispatch."""
        self.inflight[member] += slots
        self.dispatched[member] += 1

    def unplace(self, member: str, slots: int) -> None:
        """A placement taken back before it ran: as if it never happened."""
        self.inflight[member] -= slots
        self.dispatched[member] -= 1

    def release(self, member: str, slots: int) -> None:
        """A run there ended: its slots are free (it still counts as dispatched)."""
        self.inflight[member] -= slots
