"""Helpers for the dashboard tests, imported as ``dash_support`` (a name no other test
folder uses). Real processes only: `partisim worker` and `partisim serve` subprocesses
on loopback, started by the shared helpers (tests/helpers/); every process is stopped
at the end of its test.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from helpers.config import write_config
from helpers.serve import Serve
from helpers.workers import RunningWorker, start_worker

from partisim.protocol.live import LiveMessage, LiveTask, LiveWorker

#: how the browser tests start Chromium (found by the `chromium` fixture of tests/conftest.py)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


#: a short request timeout and a quick ping, so the page follows workers that come and go
DASH_SETTINGS = {"timeout": 2.0, "ping_interval": 0.5, "failures_before_inactive": 2}


@dataclass
class Fleet:
    workers: dict[str, RunningWorker]
    serve: Serve


def start_fleet(tmp: Path, hosts: dict[str, str], **settings: Any) -> Fleet:
    """A worker per `{worker_id: host}` and a `partisim serve` that sees them all active."""
    workers: dict[str, RunningWorker] = {}
    serve: Serve | None = None
    try:
        for worker_id, host in hosts.items():
            workers[worker_id] = start_worker(
                host, None, "--capacity", "2", env={"WORKER_ID": worker_id}, cwd=tmp / worker_id
            )
        config = write_config(
            tmp / "config_workers.json",
            [(i, w.host, w.port) for i, w in workers.items()],
            **{**DASH_SETTINGS, **settings},
        )
        serve = Serve(config, tmp / "partisim.db", workdir=tmp)
        serve.start()
        serve.wait_workers(len(workers))
    except BaseException:
        _stop_all(workers, serve)
        raise
    return Fleet(workers, serve)


def stop_fleet(fleet: Fleet) -> None:
    _stop_all(fleet.workers, fleet.serve)


def _stop_all(workers: dict[str, RunningWorker], serve: Serve | None) -> None:
    if serve is not None:
        serve.stop()
    for w in workers.values():
        w.stop(timeout=10)


def check_live_message(data: dict[str, Any]) -> None:
    """Every event's data is a `LiveMessage`: each section and row is what the model says,
    and nothing the model does not know rides along."""
    message = LiveMessage.model_validate(data)
    unknown = set(data) - set(LiveMessage.model_fields)
    assert not unknown, f"fields outside LiveMessage: {unknown}"
    for name, rows in (("recent", message.recent), ("workers", message.workers)):
        model = LiveTask if name == "recent" else LiveWorker
        for raw_row in data.get(name) or []:
            extra = set(raw_row) - set(model.model_fields)
            assert not extra, f"{name}: fields outside {model.__name__}: {extra}"
        assert rows is None or len(rows) == len(data[name])


class EventStream:
    """A real Server-Sent Events client over httpx: ``next()`` returns (event, data)."""

    def __init__(self, url: str, read_timeout: float = 10.0) -> None:
        self._client = httpx.Client(timeout=httpx.Timeout(5.0, read=read_timeout), trust_env=False)
        self._context = self._client.stream("GET", url, headers={"Accept": "text/event-stream"})
        self.response = self._context.__enter__()
        self._lines = self.response.iter_lines()
        #: the live state as the events seen by `until` built it
        self.state: dict[str, Any] = {}

    def next(self) -> tuple[str, str] | None:
        """The next event (comments and ``retry:`` skipped); None when the stream ended."""
        event, data = "message", []
        for line in self._lines:
            if line == "":
                if data:
                    return event, "\n".join(data)
                event = "message"
                continue
            if line.startswith(":") or line.startswith("retry:"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
        return None

    def until(self, predicate: Any, timeout: float, what: str) -> tuple[str, Any]:
        """Read events until ``predicate(event, decoded_data)`` holds (deadline ``timeout``)."""
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            item = self.next()
            if item is None:
                raise AssertionError(f"stream ended while waiting for {what}; saw {seen[-3:]}")
            event, raw = item
            data = json.loads(raw)
            check_live_message(data)
            seen.append(event)
            if event == "snapshot":
                self.state = dict(data)
            elif event == "update":
                assert self.state, "an update came before any snapshot"
                self.state.update(data)
            if predicate(event, data):
                return event, data
        raise AssertionError(f"timed out after {timeout} s waiting for {what}; saw {seen[-5:]}")

    def until_state(self, predicate: Any, timeout: float, what: str) -> dict[str, Any]:
        """Follow the live state (a ``snapshot``, then ``update`` events carrying only the
        sections that changed) until ``predicate(state)`` holds; returns that state."""
        self.until(lambda e, d: e in ("snapshot", "update") and predicate(self.state), timeout, what)
        return dict(self.state)

    def close(self) -> None:
        self._context.__exit__(None, None, None)
        self._client.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
