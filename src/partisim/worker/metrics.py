"""Prometheus text exposition of the worker's counters (no client library needed)."""

from __future__ import annotations

import bisect
from collections.abc import Iterable

__all__ = ["Metrics", "BUCKETS"]

#: upper bounds (s) of the task duration histogram
BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    def __init__(self, statuses: Iterable[str]) -> None:
        self.tasks = {s: 0 for s in statuses}
        self.rejected: dict[int, int] = {}
        self._bucket_counts = [0] * (len(BUCKETS) + 1)
        self._sum = 0.0
        self._count = 0

    def task_finished(self, status: str, duration: float | None) -> None:
        self.tasks[status] = self.tasks.get(status, 0) + 1
        if duration is not None:
            self._bucket_counts[bisect.bisect_left(BUCKETS, duration)] += 1
            self._sum += duration
            self._count += 1

    def request_refused(self, code: int) -> None:
        self.rejected[code] = self.rejected.get(code, 0) + 1

    def render(
        self, *, worker_id: str, version: str, runner: str, running: int, queued: int, capacity: int, uptime_s: float
    ) -> str:
        w = f'worker_id="{_label(worker_id)}"'
        lines = [
            "# HELP partisim_worker_info Worker identity.",
            "# TYPE partisim_worker_info gauge",
            f'partisim_worker_info{{{w},version="{_label(version)}",runner="{_label(runner)}"}} 1',
            "# HELP partisim_worker_tasks_total Tasks finished, by final status.",
            "# TYPE partisim_worker_tasks_total counter",
        ]
        for status, n in sorted(self.tasks.items()):
            lines.append(f'partisim_worker_tasks_total{{{w},status="{status}"}} {n}')
        lines += [
            "# HELP partisim_worker_requests_refused_total Requests refused before running, by HTTP code.",
            "# TYPE partisim_worker_requests_refused_total counter",
        ]
        for code, n in sorted(self.rejected.items()):
            lines.append(f'partisim_worker_requests_refused_total{{{w},code="{code}"}} {n}')
        lines += [
            "# HELP partisim_worker_task_duration_seconds Wall time of finished tasks.",
            "# TYPE partisim_worker_task_duration_seconds histogram",
        ]
        cumulative = 0
        for bound, n in zip((*BUCKETS, float("inf")), self._bucket_counts, strict=True):
            cumulative += n
            le = "+Inf" if bound == float("inf") else f"{bound:g}"
            lines.append(f'partisim_worker_task_duration_seconds_bucket{{{w},le="{le}"}} {cumulative}')
        lines += [
            f"partisim_worker_task_duration_seconds_sum{{{w}}} {self._sum:.6f}",
            f"partisim_worker_task_duration_seconds_count{{{w}}} {self._count}",
        ]
        for name, help_text, value in (
            ("running", "Tasks running now.", running),
            ("queued", "Tasks waiting for a slot.", queued),
            ("capacity", "Tasks that may run at once.", capacity),
            ("uptime_seconds", "Seconds since the worker started.", round(uptime_s, 3)),
        ):
            lines += [
                f"# HELP partisim_worker_{name} {help_text}",
                f"# TYPE partisim_worker_{name} gauge",
                f"partisim_worker_{name}{{{w}}} {value}",
            ]
        return "\n".join(lines) + "\n"
