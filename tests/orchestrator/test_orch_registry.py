"""Worker health: one-shot rounds and the periodic HealthMonitor, against real workers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from helpers.config import write_config
from helpers.processes import HOST_A, HOST_B, free_port_on
from orch_support import launch_worker

from partisim.fleet import load_config, parse_config
from partisim.fleet.health import HealthMonitor, Registry, WorkerHealth, ping_all


def test_ping_all_reports_each_configured_worker(pair) -> None:
    healths = ping_all(load_config(pair.config), with_status=True)
    assert [h.id for h in healths] == ["worker-01", "worker-02"]
    assert [h.url for h in healths] == [f"http://{HOST_A}:{pair.port}", f"http://{HOST_B}:{pair.port}"]
    for h in healths:
        assert h.state == "active" and h.active
        assert h.reported_id == h.id
        assert h.latency_ms is not None and h.latency_ms > 0
        assert h.consecutive_failures == 0 and h.last_error is None
        assert h.last_status is not None and h.last_status.worker_id == h.id
        data = h.to_dict()
        assert set(data) >= {
            "id",
            "url",
            "state",
            "since",
            "latency_ms",
            "reported_id",
            "consecutive_failures",
            "last_status",
        }


def test_monitor_counts_failures_then_recovers(tmp_path: Path) -> None:
    port = free_port_on("127.0.0.1")
    worker = launch_worker("127.0.0.1", port, "mon-01")
    config = load_config(
        write_config(tmp_path / "c.json", [("mon-01", "127.0.0.1", port)], timeout=3, failures_before_inactive=2)
    )
    changes: list[WorkerHealth] = []
    # A long interval: the rounds below are driven by hand, one at a time.
    monitor = HealthMonitor(Registry.from_config(config), interval=3600, on_change=changes.append)
    replacement = None

    async def scenario() -> None:
        nonlocal replacement
        await monitor.start()
        (h,) = monitor.snapshot()
        assert h.state == "active" and h.reported_id == "mon-01"
        assert h.last_status is not None and h.last_status.capacity >= 1
        active_since = h.since

        worker.kill()
        await monitor.run_once()
        (h,) = monitor.snapshot()
        assert (h.state, h.consecutive_failures) == ("active", 1)  # one miss is not enough
        assert "no se puede conectar" in (h.last_error or "")
        await monitor.run_once()
        (h,) = monitor.snapshot()
        assert (h.state, h.consecutive_failures) == ("inactive", 2)
        assert h.since >= active_since
        assert monitor.registry.active() == []

        replacement = launch_worker("127.0.0.1", port, "mon-01")
        await monitor.run_once()
        (h,) = monitor.snapshot()
        assert (h.state, h.consecutive_failures, h.last_error) == ("active", 0, None)
        await monitor.stop()
        assert not monitor.running

    try:
        asyncio.run(scenario())
    finally:
        worker.kill()
        if replacement is not None:
            replacement.kill()
    assert [c.state for c in changes] == ["active", "inactive", "active"]
    assert monitor.rounds == 4


def test_monitor_loop_runs_in_the_background_until_stopped(dead_config: Path) -> None:
    config = load_config(dead_config)
    monitor = HealthMonitor(Registry.from_config(config), interval=0.05, with_status=False)

    async def scenario() -> int:
        async with monitor:
            deadline = time.monotonic() + 20
            while monitor.rounds < 4:
                assert time.monotonic() < deadline, "the loop did not keep pinging"
                await asyncio.sleep(0.02)  # poll the counter; the loop runs on its own
            assert monitor.running
        assert not monitor.running
        return monitor.rounds

    rounds = asyncio.run(scenario())
    for h in monitor.snapshot():
        assert h.state == "inactive"
        assert h.consecutive_failures == rounds  # every round counted, none skipped


def test_registry_rules_and_config_reload() -> None:
    config = parse_config(
        {"workers": [{"id": "a", "ip": "127.0.0.1", "port": 1}, {"id": "b", "ip": "127.0.0.1", "port": 2}]}
    )
    registry = Registry(config.workers, timeout=5.0, failures_before_inactive=3)
    assert registry.record_success("a", latency_ms=1.5, reported_id="a") is True
    assert registry.record_failure("a", "x") is False
    assert registry.record_failure("a", "x") is False
    assert registry.record_failure("a", "y") is True  # third miss: inactive
    assert registry.get("a").state == "inactive" and registry.get("a").last_error == "y"
    assert registry.record_failure("b", "never seen") is False
    assert registry.get("b").state == "inactive"
    registry.record_success("b")
    # Reload: "b" keeps its history, "a" moved to another port and starts afresh.
    moved = parse_config(
        {"workers": [{"id": "a", "ip": "127.0.0.1", "port": 3}, {"id": "b", "ip": "127.0.0.1", "port": 2}]}
    )
    registry.set_workers(moved.workers)
    assert registry.get("b").state == "active"
    assert registry.get("a").state == "inactive" and registry.get("a").consecutive_failures == 0
    # Snapshots are copies: changing one does not change the registry.
    snap = registry.snapshot()
    snap[1].state = "inactive"
    assert registry.get("b").state == "active"
