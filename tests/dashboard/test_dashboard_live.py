"""The live feed behind ``/api/events``: it coalesces a fast batch into a few messages a
second (real serve, real workers, tiny tasks, counted SSE events), lists the running
and the latest finished tasks, and in-process: it rebuilds nothing when nothing
changed and sends only the sections that did."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from pathlib import Path

import httpx
import pytest
from dash_support import EventStream, Fleet
from helpers.results import execute_result

from partisim.protocol import MemberView
from partisim.serve.executors.base import Attempt, Executor, Placement
from partisim.serve.queue.store import TaskQueue
from partisim.serve.queue.task import Task, TaskSpec
from partisim.serve.scheduler import Scheduler
from partisim.serve.web.context import ServeState
from partisim.serve.web.live import PUSH_INTERVAL_S, RECENT_LIMIT, LiveFeed

TINY = {"NUM_PARTICULAS": 10, "NUM_PASOS": 1, "SEMILLA": 1}
_RANK = {"running": 0, "success": 1, "failed": 1, "cancelled": 1, "queued": 2}


@pytest.mark.slow
def test_a_fast_batch_is_coalesced_into_a_few_messages_a_second(fleet: Fleet) -> None:
    count = 400
    messages: list[dict] = []

    def watch(event: str, data: dict) -> bool:
        if event not in ("snapshot", "update"):
            return False
        messages.append(data)
        state = stream.state
        # the list shows what moves: running first, then the latest finished, queued last
        ranks = [_RANK[t["status"]] for t in state["recent"]]
        assert ranks == sorted(ranks), [t["status"] for t in state["recent"]]
        head = state["summary"]
        if head["success"] + head["failed"] >= RECENT_LIMIT:
            assert all(t["status"] != "queued" for t in state["recent"]), state["recent"]
        return head["success"] == count

    with (
        EventStream(fleet.serve.url + "/api/events", read_timeout=30) as stream,
        httpx.Client(base_url=fleet.serve.url, timeout=30, trust_env=False) as client,
    ):
        stream.until(lambda e, d: e == "snapshot", 10, "the first snapshot")
        start = time.monotonic()
        answer = client.post("/api/tasks", json={"benchmark": "python", "params": TINY, "repeat": count})
        assert answer.status_code == 201, answer.text
        stream.until(watch, 180, f"{count} finished tasks")
        elapsed = time.monotonic() - start
    final = stream.state
    assert final["summary"]["queued"] == final["summary"]["running"] == 0
    assert [t["status"] for t in final["recent"]] == ["success"] * RECENT_LIMIT
    assert sum(w["completed"] for w in final["workers"]) == count
    # one message per interval at most, whatever the completion rate
    times = [m["server_time"] for m in messages]
    assert all(b - a >= PUSH_INTERVAL_S * 0.9 for a, b in itertools.pairwise(times)), times
    assert len(messages) <= elapsed / PUSH_INTERVAL_S + 2, (len(messages), elapsed)
    assert len(messages) < count / 5


# -- in-process -------------------------------------------------------------------------


class Members(Executor):
    """Two members whose health fields change on every look, as pings make them."""

    kind = "http"

    def __init__(self) -> None:
        super().__init__()
        self.looks = 0
        self.second_state = "active"

    def members(self) -> list[MemberView]:
        self.looks += 1
        return [
            MemberView(
                id="w1",
                url="http://127.0.0.93:1",
                address="127.0.0.93:1",
                state="active",
                capacity=2,
                inflight=0,
                free=2,
                latency_ms=1.0 + self.looks,
                checked_at=time.time(),
            ),
            MemberView(
                id="w2",
                url="http://127.0.0.155:1",
                address="127.0.0.155:1",
                state=self.second_state,
                capacity=2,
                inflight=0,
                free=2,
                latency_ms=2.0 + self.looks,
                checked_at=time.time(),
                consecutive_failures=self.looks,
            ),
        ]

    def free_slots(self) -> int:
        return 0

    def bound(self, task: Task) -> float:
        return 60.0

    def place(self, task: Task) -> Placement | None:
        return None

    def unplace(self, placement: Placement) -> None:
        pass

    def launch(self, attempt: Attempt) -> None:
        pass

    def cancel(self, task_id: str, member: str | None, address: str | None) -> None:
        pass

    def resume(self, task: Task) -> bool:
        return False


def sections(event: str) -> dict:
    name, data = event.strip().split("\n")
    return {"event": name.removeprefix("event: "), **json.loads(data.removeprefix("data: "))}


def test_feed_rebuilds_only_on_change_and_sends_only_what_changed(tmp_path: Path) -> None:
    async def main() -> None:
        queue = TaskQueue(tmp_path / "q.db")
        members = Members()
        state = ServeState(queue=queue, scheduler=Scheduler(queue, members))
        feed = LiveFeed(state)
        try:
            assert feed.refresh(force=True)
            first = sections(feed.snapshot_event())
            assert set(first) == {"event", "v", "server_time", "summary", "workers", "recent", "activity"}
            assert first["summary"]["workers_active"] == 2 and first["recent"] == []
            builds, version = feed.builds, feed.version
            for _ in range(5):  # every look sees new latencies: not a change
                assert not feed.refresh()
            assert (feed.builds, feed.version) == (builds, version) and members.looks >= 6

            _, ids = queue.enqueue([TaskSpec("python", TINY)] * 3)
            assert feed.refresh()
            update = sections(feed.update_event(version))
            assert set(update) == {"event", "v", "server_time", "summary", "recent"}  # not workers, not activity
            assert update["summary"]["queued"] == 3 and [t["id"] for t in update["recent"]] == ids

            version = feed.version
            members.second_state = "inactive"
            assert feed.refresh()
            update = sections(feed.update_event(version))
            assert set(update) == {"event", "v", "server_time", "summary", "workers"}
            assert update["summary"]["workers_active"] == 1

            # many completions between two looks: one build, one new version
            version, builds = feed.version, feed.builds
            queue.claim_many([(t, "w1", "u", time.time() + 60) for t in ids])
            for t in ids:
                queue.complete(t, 1, execute_result("a" * 64))
            assert feed.refresh()
            assert (feed.builds, feed.version) == (builds + 1, version + 1)
            update = sections(feed.update_event(version))
            assert update["summary"]["success"] == 3 and sum(a["per_s"] for a in update["activity"]) > 0
            assert {t["status"] for t in update["recent"]} == {"success"}
            assert set(update["recent"][0]["result"]) <= {
                "engine",
                "simulation_time",
                "execution_time",
                "particle_collisions",
                "wall_collisions",
                "kinetic_energy",
                "checksum",
                "threads",  # the Hilos column and its reason
                "threads_requested",
                "threads_reason",
                "environment",  # only whether the machine was busy, and why
            }
            assert [w["completed"] for w in update["workers"]] == [3, 0]  # who did the work changed too
            # a page two versions behind gets what it missed in one message
            behind = sections(feed.update_event(version - 1))
            assert behind["workers"][1]["state"] == "inactive" and behind["summary"]["success"] == 3
        finally:
            queue.close()

    asyncio.run(main())
