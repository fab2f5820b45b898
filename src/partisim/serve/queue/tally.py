"""Counts of the queue kept in memory, so that reading them costs O(1) instead of a scan.

`TaskQueue` moves a task in its `Tally` in the same critical section as the SQL
transition that moved it, and builds the tally from the table when it opens (so a
``serve`` killed with ``kill -9`` starts again from what SQLite holds). It is exact as
long as that queue object is the only writer of the file, which the database lock of
``serve`` guarantees.

It holds: tasks per status (overall and per batch), successes and failures per worker,
and the tasks that finished (success or failed) in each second of the last
`KEEP_SECONDS` seconds, for the throughput and the activity histogram.
"""

from __future__ import annotations

from collections import deque

__all__ = ["Tally", "KEEP_SECONDS"]

#: how far back the per-second finish counts go (the activity histogram spans 300 s)
KEEP_SECONDS = 330


class Tally:
    """Counters of one queue; every method is O(1) or O(`KEEP_SECONDS`). Not locked:
    the queue calls the mutators under its own lock."""

    def __init__(self, statuses: tuple[str, ...], activity: tuple[str, ...]) -> None:
        self.statuses = statuses
        #: the statuses whose entry counts as activity (a finished task)
        self.activity = activity
        self.overall: dict[str, int] = dict.fromkeys(statuses, 0)
        self.by_batch: dict[str, dict[str, int]] = {}
        #: worker -> {status: n} for the activity statuses
        self.by_worker: dict[str, dict[str, int]] = {}
        #: [second, finished in that second], oldest first
        self.per_second: deque[list[int]] = deque()
        #: bumped on every change: a reader compares it to know whether to look again
        self.revision = 0

    # -- changes ----------------------------------------------------------------------

    def add(self, batch: str, status: str, n: int = 1) -> None:
        """``n`` new tasks in ``status`` (an enqueue, or rows read when the queue opens)."""
        self.overall[status] += n
        per = self.by_batch.get(batch)
        if per is None:
            per = self.by_batch[batch] = dict.fromkeys(self.statuses, 0)
        per[status] += n
        self.revision += 1

    def move(
        self, batch: str, before: str, after: str, *, worker: str | None = None, finished_at: float | None = None
    ) -> None:
        """One task of ``batch`` went from ``before`` to ``after``; when ``after`` is an
        activity status, ``worker`` did it at ``finished_at``."""
        self.overall[before] -= 1
        self.overall[after] += 1
        per = self.by_batch.get(batch)
        if per is None:  # cannot happen when the tally was built from the same table
            per = self.by_batch[batch] = dict.fromkeys(self.statuses, 0)
            per[before] = 1
        per[before] -= 1
        per[after] += 1
        if after in self.activity:
            if worker is not None:
                self.count_worker(worker, after)
            if finished_at is not None:
                self.count_finished(int(finished_at))
        self.revision += 1

    def count_worker(self, worker: str, status: str, n: int = 1) -> None:
        per = self.by_worker.get(worker)
        if per is None:
            per = self.by_worker[worker] = dict.fromkeys(self.activity, 0)
        per[status] += n

    def count_finished(self, second: int, n: int = 1) -> None:
        ring = self.per_second
        if ring and ring[-1][0] == second:
            ring[-1][1] += n
        elif not ring or ring[-1][0] < second:
            ring.append([second, n])
            while ring and ring[0][0] <= second - KEEP_SECONDS:
                ring.popleft()
        else:  # out of order (the clock stepped back, or the rows read at start): rare
            for item in reversed(ring):
                if item[0] == second:
                    item[1] += n
                    return
            if second > ring[-1][0] - KEEP_SECONDS:
                ring.append([second, n])
                self.per_second = deque(sorted(ring))

    # -- reading ----------------------------------------------------------------------

    def counts(self, batch: str | None = None) -> dict[str, int]:
        """Tasks per status (every status present) plus ``total``; zeros for an unknown batch."""
        source = self.overall if batch is None else self.by_batch.get(batch)
        counts = dict(source) if source is not None else dict.fromkeys(self.statuses, 0)
        counts["total"] = sum(counts[s] for s in self.statuses)
        return counts

    def worker_counts(self, status: str) -> dict[str, int]:
        return {w: per[status] for w, per in self.by_worker.items() if per.get(status)}

    def finished_in_last(self, seconds: int, now: float) -> int:
        """Tasks finished in the last ``seconds`` whole seconds, the current one included."""
        cutoff = int(now) - seconds
        total = 0
        for second, n in reversed(self.per_second):
            if second <= cutoff:
                break
            total += n
        return total

    def histogram(self, start: int, width: int, buckets: int) -> list[int]:
        """Finished tasks in each of ``buckets`` runs of ``width`` seconds from second ``start``."""
        counts = [0] * buckets
        end = start + width * buckets
        for second, n in self.per_second:
            if start <= second < end:
                counts[(second - start) // width] += n
        return counts
