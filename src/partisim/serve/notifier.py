"""Wakes the requests that wait for tasks to finish (long polls, the event stream)."""

from __future__ import annotations

import asyncio

__all__ = ["Notifier"]


class Notifier:
    """``task_finished`` wakes whoever waits on that task and everyone waiting for any change."""

    def __init__(self) -> None:
        self._tasks: dict[str, list[asyncio.Event]] = {}
        self._changed = asyncio.Event()
        self.closed = False

    def task_finished(self, task_id: str) -> None:
        for event in self._tasks.pop(task_id, ()):
            event.set()
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_task(self, task_id: str, timeout: float) -> None:
        event = asyncio.Event()
        self._tasks.setdefault(task_id, []).append(event)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            waiting = self._tasks.get(task_id)
            if waiting and event in waiting:
                waiting.remove(event)
                if not waiting:
                    del self._tasks[task_id]

    async def wait_change(self, timeout: float) -> bool:
        """Wait for the next finished task; False if ``timeout`` ran out first."""
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    def close(self) -> None:
        """Release every waiting request (shutdown)."""
        self.closed = True
        for task_id in list(self._tasks):
            self.task_finished(task_id)
        self._changed.set()
