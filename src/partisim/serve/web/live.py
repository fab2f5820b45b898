"""The live feed behind the dashboard's event stream (``/api/events``).

One `LiveFeed` per service, shared by every open page. While at least one page listens,
its loop looks for changes (at once when a task finishes, else every `POLL_S`) and
rebuilds the live state at most every `PUSH_INTERVAL_S`, whatever the completion rate:
a thousand tasks finishing in one interval make one message. Nothing is rebuilt when
nothing changed: the queue's revision counter, the workers' state (not the health
fields that change on every ping: latency, last check, the worker's own status) and,
while tasks finished recently, the sliding windows every `SLIDE_S`.

The state has four sections (summary, workers, recent tasks, activity). A page gets
them all once (``snapshot``), then only the sections that changed (``update``), and a
``heartbeat`` after `HEARTBEAT_S` without news. Every message is serialised once,
however many pages receive it.

Building the state costs O(1) in the size of the history: counts come from the queue's
in-memory tally, the recent tasks from the ends of two indexes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from pydantic import BaseModel

from partisim.protocol import MemberView
from partisim.protocol.live import SECTIONS, ActivityBucket, LiveTask, LiveWorker
from partisim.serve.queue.task import Task
from partisim.serve.web.context import ServeState, summary, workers

__all__ = [
    "LiveFeed",
    "live_feed",
    "recent_row",
    "worker_row",
    "PUSH_INTERVAL_S",
    "POLL_S",
    "SLIDE_S",
    "HEARTBEAT_S",
    "RECENT_LIMIT",
    "ACTIVITY_BUCKET_S",
    "ACTIVITY_BUCKETS",
]

log = logging.getLogger(__name__)

#: at most one message per this many seconds (completions in between are coalesced)
PUSH_INTERVAL_S = 0.5
#: changes that wake nobody (a claim, a submission, a worker coming back) are looked for this often
POLL_S = 0.5
#: the sliding windows (throughput, activity) move this often while they are not empty
SLIDE_S = 5.0
#: a heartbeat after this long without a message, so the page notices a dead link
HEARTBEAT_S = 5.0
#: rows of the "latest tasks" list
RECENT_LIMIT = 20
#: task activity histogram: ACTIVITY_BUCKETS buckets of ACTIVITY_BUCKET_S seconds
ACTIVITY_BUCKET_S = 10
ACTIVITY_BUCKETS = 30


def _dumps(rows: Sequence[BaseModel]) -> str:
    """A list of models as compact strict JSON (the models' floats are finite by type)."""
    return "[" + ",".join(row.model_dump_json() for row in rows) + "]"


def recent_row(task: Task) -> LiveTask:
    """A task as the page lists it: its view without the timings, and only the result
    fields the page shows."""
    return LiveTask.model_validate(task.view(), from_attributes=True)


def worker_row(member: MemberView) -> LiveWorker:
    """A worker as the page lists it: the member, with only the fields of its own status
    that the page shows."""
    return LiveWorker.model_validate(member, from_attributes=True)


def _members_key(members: list[MemberView]) -> tuple[tuple[object, ...], ...]:
    """What must differ for the workers to count as changed: their state and slots, not
    the health fields every ping refreshes (latency, last check, the worker's status)."""
    return tuple(
        (m.id, m.state, m.since, m.capacity, m.inflight, m.free, m.suspended, m.last_error, m.reported_id)
        for m in members
    )


class LiveFeed:
    """The live state of one service and the pages that follow it (see the module doc)."""

    def __init__(self, state: ServeState) -> None:
        self._state = state
        #: bumped when a build changed some section; pages ask for what changed since theirs
        self.version = 0
        #: how many times the state was built (a no-change look is not a build)
        self.builds = 0
        self.server_time = 0.0
        self._texts: dict[str, str] = {}
        self._keys: dict[str, str] = {}
        self._changed_at: dict[str, int] = {}
        self._events: dict[int, str] = {}  # ``since`` version -> update event, for this version
        self._revision = -1
        self._members: tuple[tuple[Any, ...], ...] | None = None
        self._built_at = float("-inf")  # monotonic
        self._sliding = False
        self._published = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._subscribers = 0

    # -- pages ------------------------------------------------------------------------

    @property
    def subscribers(self) -> int:
        """Pages following the feed now (the dashboard's live clients)."""
        return self._subscribers

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[None]:
        """While a page listens; the first one starts the loop. The state is fresh on
        entry (at most `SLIDE_S` old)."""
        self._subscribers += 1
        try:
            if self._loop_task is None or self._loop_task.done():
                self.refresh(force=True)
                self._loop_task = asyncio.create_task(self._run(), name="partisim-live-feed")
            elif time.monotonic() - self._built_at > SLIDE_S:
                self.refresh(force=True)
            yield
        finally:
            self._subscribers -= 1

    async def wait(self, seen: int, timeout: float) -> bool:
        """Until a version newer than ``seen`` is out, or the service stops (True); False
        when ``timeout`` ran out first."""
        if self.version > seen:
            return True
        try:
            await asyncio.wait_for(self._published.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    def snapshot_event(self) -> str:
        """Every section, as an SSE ``snapshot`` event (for a page that just connected)."""
        event = self._events.get(-1)
        if event is None:
            body = ",".join(f'"{name}":{self._texts[name]}' for name in SECTIONS)
            event = self._events[-1] = (
                f'event: snapshot\ndata: {{"v":{self.version},"server_time":{self.server_time!r},{body}}}\n\n'
            )
        return event

    def update_event(self, since: int) -> str:
        """The sections that changed after version ``since``, as an SSE ``update`` event."""
        event = self._events.get(since)
        if event is None:
            parts = [f'"{name}":{self._texts[name]}' for name in SECTIONS if self._changed_at[name] > since]
            body = "".join("," + p for p in parts)
            event = self._events[since] = (
                f'event: update\ndata: {{"v":{self.version},"server_time":{self.server_time!r}{body}}}\n\n'
            )
        return event

    def heartbeat_event(self) -> str:
        return f'event: heartbeat\ndata: {{"v":{self.version},"server_time":{time.time()!r}}}\n\n'

    # -- building -----------------------------------------------------------------------

    async def _run(self) -> None:
        notifier = self._state.notifier
        while self._subscribers > 0 and not notifier.closed:
            await notifier.wait_change(POLL_S)  # early when a task finishes
            pause = self._built_at + PUSH_INTERVAL_S - time.monotonic()
            if pause > 0:  # coalesce: whatever finishes meanwhile goes in the next build
                await asyncio.sleep(pause)
            if notifier.closed:
                break
            try:
                self.refresh()
            except Exception:  # the pages keep the last state; the next look tries again
                log.exception("no se pudo preparar el estado del panel")
        self._publish()  # release the pages (the service is stopping, or nobody listens)

    def _publish(self) -> None:
        self._published.set()
        self._published = asyncio.Event()

    def refresh(self, *, force: bool = False) -> bool:
        """Build the state if something changed (or ``force``); True when a section changed
        and a new version is out. Runs in the event loop: the executor is not thread-safe,
        and every part is bounded (no part reads more than a few dozen rows)."""
        state = self._state
        queue = state.queue
        revision = queue.revision
        members = state.executor.members()
        members_key = _members_key(members)
        now_m = time.monotonic()
        slide = self._sliding and now_m - self._built_at >= SLIDE_S
        if not (force or slide or revision != self._revision or members_key != self._members):
            return False
        self.builds += 1
        now = time.time()
        texts: dict[str, str] = {}
        keys: dict[str, str] = {}
        head = summary(state, members=members, now=now)
        texts["summary"] = head.model_dump_json()
        keys["summary"] = head.model_copy(update={"timestamp": 0.0}).model_dump_json()
        listed = workers(state, members=members)
        texts["workers"] = _dumps([worker_row(w) for w in listed])
        # sent again for a change of state, slots or counts; new latencies ride along then
        keys["workers"] = repr((members_key, [(w.completed, w.failed) for w in listed]))
        if revision != self._revision or "recent" not in self._texts:
            texts["recent"] = _dumps([recent_row(t) for t in queue.recent(RECENT_LIMIT)])
        activity = self._activity(now)
        texts["activity"] = _dumps(activity)
        for name, text in texts.items():
            keys.setdefault(name, text)
        self._revision, self._members, self._built_at = revision, members_key, now_m
        self._sliding = head.finished_last_60s > 0 or any(a.per_s for a in activity)
        changed = [name for name in texts if self._keys.get(name) != keys[name]]
        if not changed:
            return False
        self.version += 1
        self.server_time = now
        for name in changed:
            self._texts[name], self._keys[name], self._changed_at[name] = texts[name], keys[name], self.version
        self._events.clear()
        self._publish()
        return True

    def _activity(self, now: float) -> list[ActivityBucket]:
        """Finished tasks per second in each of the last ACTIVITY_BUCKETS windows, oldest
        first; the last window ends with the current second."""
        start = int(now) - ACTIVITY_BUCKETS * ACTIVITY_BUCKET_S + 1
        counts = self._state.queue.activity(start, ACTIVITY_BUCKET_S, ACTIVITY_BUCKETS)
        return [
            ActivityBucket(t=float(start + k * ACTIVITY_BUCKET_S), per_s=round(n / ACTIVITY_BUCKET_S, 3))
            for k, n in enumerate(counts)
        ]


def live_feed(state: ServeState) -> LiveFeed:
    """The feed of this service (made on first use)."""
    feed = state.caches.get("live")
    if not isinstance(feed, LiveFeed):
        feed = state.caches["live"] = LiveFeed(state)
    return feed
