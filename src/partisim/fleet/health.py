"""Worker health: who answers, since when, how fast, and what they report.

Public API (shared with ``partisim serve``; keep it small):

``WorkerHealth``
    One worker's record. Fields: ``id`` and ``url`` (from the configuration),
    ``state`` (``"active"`` | ``"inactive"``), ``since`` (epoch seconds of the
    last state change), ``latency_ms`` (last successful ping), ``reported_id``
    (the ``worker_id`` the worker itself answers with), ``consecutive_failures``,
    ``last_status`` (the last ``GET /status`` as a `WorkerStatus`, or ``None``), plus
    ``last_error`` (Spanish text of the last failure), ``last_seen`` and
    ``checked_at`` (epoch seconds). ``to_dict()`` gives a JSON-ready dict.

``Registry(workers, *, timeout, failures_before_inactive, token=None)``
    Holds one ``WorkerHealth`` per configured worker. ``await probe(with_status=...)``
    pings every worker in parallel (one round) and applies the state rules;
    ``snapshot()`` returns copies; ``active()`` the active ones;
    ``record_failure(id, error)`` lets a caller that saw a worker fail (a
    dispatcher) count it without waiting for the next ping;
    ``set_workers(entries)`` follows a configuration reload, keeping the history
    of workers whose id and url did not change. ``keep_clients()`` makes probes
    reuse one HTTP client per worker until ``await close()`` (the monitor does both).

``HealthMonitor(registry, *, interval, with_status=True, on_change=None)``
    Periodic loop over ``Registry.probe``: ``await start()``, ``await stop()``,
    ``snapshot()``, ``await run_once()``; also an async context manager.
    ``on_change(health)`` is called (sync) whenever a worker changes state.

``ping_all(config, *, with_status=False, token=None) -> list[WorkerHealth]``
    One-shot, synchronous round for the menu and the CLI (it runs its own event
    loop: from async code, use ``await Registry.from_config(config).probe()``).

The token for protected endpoints (``/status``) of each worker comes from the
configuration (its own ``token``/``token_file``, or the shared ``worker_token``), else
from ``PARTISIM_TOKEN``, unless one is passed explicitly; https workers are verified
against the configuration's CA file (``--ca-file``/``PARTISIM_CA_FILE`` override it).

State rules: a worker becomes active as soon as a ping succeeds. A worker that was
active becomes inactive after ``failures_before_inactive`` consecutive failures; a
worker never seen answering is inactive from its first failure. One-shot rounds
start from a fresh registry, so a worker that does not answer is inactive.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Literal

from pydantic import JsonValue

from partisim.errors import PartisimError, explain_os_error
from partisim.fleet.client import AsyncWorkerClient
from partisim.fleet.config import Config, WorkerEntry
from partisim.protocol import PingReply, WorkerStatus

__all__ = [
    "WorkerHealth",
    "Registry",
    "HealthMonitor",
    "ping_all",
    "describe_error",
    "token_from_env",
    "worker_tokens",
]

log = logging.getLogger(__name__)

State = Literal["active", "inactive"]


@dataclass
class WorkerHealth:
    """Health record of one configured worker."""

    id: str
    url: str
    state: State = "inactive"
    since: float = field(default_factory=time.time)
    latency_ms: float | None = None
    reported_id: str | None = None
    consecutive_failures: int = 0
    last_status: WorkerStatus | None = None
    last_error: str | None = None
    last_seen: float | None = None
    checked_at: float | None = None

    @property
    def active(self) -> bool:
        return self.state == "active"

    @property
    def address(self) -> str:
        """``ip:port`` as the user wrote it in the configuration."""
        return self.url.split("://", 1)[-1].rstrip("/")

    def to_dict(self) -> dict[str, JsonValue]:
        """The health as JSON-ready data (``partisim workers --json``)."""
        data: dict[str, JsonValue] = asdict(self)
        data["last_status"] = self.last_status.model_dump(mode="json") if self.last_status else None
        data["since_iso"] = _iso(self.since)
        return data


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds")


def token_from_env() -> str | None:
    """The bearer token the workers expect, if the user set one."""
    return os.environ.get("PARTISIM_TOKEN") or None


def worker_tokens(config: Config, token: str | None = None) -> dict[str, str | None]:
    """The bearer token of each configured worker: ``token`` if given, else the one the
    configuration names for it, else ``PARTISIM_TOKEN``. `ConfigError` for a token file
    that cannot be read."""
    fallback = token_from_env()
    return {w.id: token if token is not None else (config.token_for(w) or fallback) for w in config.workers}


def describe_error(exc: BaseException) -> str:
    """Short Spanish description of a failed call, for tables and logs."""
    if isinstance(exc, PartisimError):
        text = str(exc).strip()
        return text or "error sin descripción"
    if isinstance(exc, asyncio.TimeoutError):
        return "sin respuesta dentro del tiempo límite"
    if isinstance(exc, OSError):
        return explain_os_error(exc)
    return f"error inesperado: {exc}" if str(exc) else "error inesperado"


class Registry:
    """Health records of the configured workers and the rules that move them."""

    def __init__(
        self,
        workers: Iterable[WorkerEntry],
        *,
        timeout: float,
        failures_before_inactive: int,
        token: str | None = None,
        tokens: dict[str, str | None] | None = None,
        ca_file: str | None = None,
    ) -> None:
        self.timeout = float(timeout)
        self.failures_before_inactive = max(1, int(failures_before_inactive))
        self.token = token
        #: per worker id, overriding ``token``
        self.tokens = dict(tokens or {})
        self.ca_file = ca_file
        self._records: dict[str, WorkerHealth] = {}
        self._entries: dict[str, WorkerEntry] = {}
        # One client per worker url while a monitor runs (see keep_clients); None means
        # a fresh client per call, for one-shot rounds that may run in a throwaway loop.
        self._clients: dict[str, AsyncWorkerClient] | None = None
        self._stale: list[AsyncWorkerClient] = []
        self.set_workers(workers)

    @classmethod
    def from_config(cls, config: Config, *, token: str | None = None, ca_file: str | None = None) -> Registry:
        settings = config.orchestrator
        return cls(
            config.workers,
            timeout=settings.timeout,
            failures_before_inactive=settings.failures_before_inactive,
            token=token if token is not None else token_from_env(),
            tokens=worker_tokens(config, token),
            ca_file=config.ca_file(ca_file),
        )

    def token_of(self, worker_id: str) -> str | None:
        return self.tokens.get(worker_id, self.token)

    # -- records -------------------------------------------------------------

    def set_workers(self, workers: Iterable[WorkerEntry]) -> None:
        """Follow the configuration: keep known workers, add new, drop removed."""
        records: dict[str, WorkerHealth] = {}
        workers = list(workers)
        self._entries = {entry.id: entry for entry in workers}
        for entry in workers:
            old = self._records.get(entry.id)
            if old is not None and old.url == entry.url:
                records[entry.id] = old
            else:
                records[entry.id] = WorkerHealth(id=entry.id, url=entry.url)
        self._records = records
        if self._clients is not None:
            urls = {h.url for h in records.values()}
            for url in [u for u in self._clients if u not in urls]:
                # closed by the next probe or close(): this method is sync
                self._stale.append(self._clients.pop(url))

    def entry(self, worker_id: str) -> WorkerEntry | None:
        """The configuration entry of a worker (its capacity, algorithms, tls...)."""
        return self._entries.get(worker_id)

    def snapshot(self) -> list[WorkerHealth]:
        """Copies of every record, in configuration order."""
        return [copy.deepcopy(h) for h in self._records.values()]

    def get(self, worker_id: str) -> WorkerHealth | None:
        h = self._records.get(worker_id)
        return copy.deepcopy(h) if h is not None else None

    def active(self) -> list[WorkerHealth]:
        return [h for h in self.snapshot() if h.active]

    # -- state rules ---------------------------------------------------------

    def record_success(
        self,
        worker_id: str,
        *,
        latency_ms: float | None = None,
        reported_id: str | None = None,
    ) -> bool:
        """Apply a successful ping; return True when the state changed."""
        h = self._records.get(worker_id)
        if h is None:
            return False
        now = time.time()
        h.checked_at = now
        h.last_seen = now
        h.consecutive_failures = 0
        h.last_error = None
        if latency_ms is not None:
            h.latency_ms = latency_ms
        if reported_id is not None:
            h.reported_id = reported_id
        if h.state != "active":
            h.state, h.since = "active", now
            log.info("worker %s activo (%s)", h.id, h.url)
            return True
        return False

    def record_failure(self, worker_id: str, error: str) -> bool:
        """Count one failure; return True when the worker just became inactive."""
        h = self._records.get(worker_id)
        if h is None:
            return False
        now = time.time()
        h.checked_at = now
        h.consecutive_failures += 1
        h.last_error = error
        if h.state == "active" and h.consecutive_failures >= self.failures_before_inactive:
            h.state, h.since = "inactive", now
            log.warning("worker %s inactivo tras %d fallos: %s", h.id, h.consecutive_failures, error)
            return True
        log.debug("worker %s: fallo %d (%s)", h.id, h.consecutive_failures, error)
        return False

    def record_status(self, worker_id: str, status: WorkerStatus | None, error: str | None = None) -> None:
        """Keep the last ``/status`` answer (None, with ``error``, when it failed)."""
        h = self._records.get(worker_id)
        if h is not None:
            h.last_status = status
            h.last_error = error

    # -- probing -------------------------------------------------------------

    async def probe(self, *, with_status: bool = False) -> list[WorkerHealth]:
        """Ping every worker in parallel, once; return the records that changed state."""
        await self._close_stale()
        ids = list(self._records)
        outcomes = await asyncio.gather(*(self._probe_one(i, with_status) for i in ids))
        return [self.get(i) for i, changed in zip(ids, outcomes, strict=True) if changed]  # type: ignore[misc]

    async def _probe_one(self, worker_id: str, with_status: bool) -> bool:
        url = self._records[worker_id].url
        try:
            # The whole round trip is bounded, not only each socket operation.
            answer, latency, status, status_error = await asyncio.wait_for(
                self._call(url, self.token_of(worker_id), with_status), timeout=self.timeout
            )
        except (PartisimError, asyncio.TimeoutError, OSError) as exc:
            if self._moved(worker_id, url):
                return False  # configuration changed while we waited
            return self.record_failure(worker_id, describe_error(exc))
        if self._moved(worker_id, url):
            return False
        changed = self.record_success(worker_id, latency_ms=latency, reported_id=answer.worker_id)
        if with_status:
            # A worker that answers /ping but not /status is alive; keep the error visible.
            self.record_status(worker_id, status, status_error)
        return changed

    def _moved(self, worker_id: str, url: str) -> bool:
        h = self._records.get(worker_id)
        return h is None or h.url != url

    async def _call(
        self, url: str, token: str | None, with_status: bool
    ) -> tuple[PingReply, float, WorkerStatus | None, str | None]:
        if self._clients is None:
            async with AsyncWorkerClient(url, timeout=self.timeout, token=token, ca_file=self.ca_file) as client:
                return await self._ping(client, with_status)
        kept = self._clients.get(url)
        if kept is None:
            kept = self._clients[url] = AsyncWorkerClient(url, timeout=self.timeout, token=token, ca_file=self.ca_file)
        return await self._ping(kept, with_status)

    @staticmethod
    async def _ping(
        client: AsyncWorkerClient, with_status: bool
    ) -> tuple[PingReply, float, WorkerStatus | None, str | None]:
        status: WorkerStatus | None = None
        status_error: str | None = None
        start = time.perf_counter()
        answer = await client.ping()
        latency = (time.perf_counter() - start) * 1000.0
        if with_status:
            try:
                status = _with_ping_counters(answer, await client.status())
            except PartisimError as exc:
                status_error = f"/status: {describe_error(exc)}"
        return answer, latency, status, status_error

    # -- clients -------------------------------------------------------------

    def keep_clients(self) -> None:
        """Reuse one HTTP client per worker across probes (a new client per ping costs a
        TCP connect and the client's setup every round) until ``await close()``."""
        if self._clients is None:
            self._clients = {}

    async def close(self) -> None:
        """Close the kept clients; later probes open a fresh client per call again."""
        clients, self._clients = self._clients or {}, None
        self._stale.extend(clients.values())
        await self._close_stale()

    async def _close_stale(self) -> None:
        stale, self._stale = self._stale, []
        for client in stale:
            try:
                await client.close()
            except Exception:  # closing must not break a probe or a shutdown
                log.debug("cierre de cliente fallido", exc_info=True)


class HealthMonitor:
    """Pings the registry's workers every ``interval`` seconds in the background."""

    def __init__(
        self,
        registry: Registry,
        *,
        interval: float,
        with_status: bool = True,
        on_change: Callable[[WorkerHealth], None] | None = None,
    ) -> None:
        self.registry = registry
        self.interval = float(interval)
        self.with_status = with_status
        self.on_change = on_change
        self.rounds = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @classmethod
    def from_config(
        cls,
        config: Config,
        *,
        with_status: bool = True,
        ca_file: str | None = None,
        on_change: Callable[[WorkerHealth], None] | None = None,
    ) -> HealthMonitor:
        return cls(
            Registry.from_config(config, ca_file=ca_file),
            interval=config.orchestrator.ping_interval,
            with_status=with_status,
            on_change=on_change,
        )

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def snapshot(self) -> list[WorkerHealth]:
        return self.registry.snapshot()

    async def run_once(self) -> list[WorkerHealth]:
        changed = await self.registry.probe(with_status=self.with_status)
        self.rounds += 1
        if self.on_change is not None:
            for h in changed:
                try:
                    self.on_change(h)
                except Exception:  # a broken callback must not stop the loop
                    log.exception("on_change falló para %s", h.id)
        return changed

    async def start(self) -> None:
        """Run a first round (so ``snapshot()`` is meaningful), then loop."""
        if self.running:
            return
        self._stopping = asyncio.Event()
        self.registry.keep_clients()
        await self.run_once()
        self._task = asyncio.create_task(self._loop(), name="partisim-health")

    async def stop(self) -> None:
        self._stopping.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        await self.registry.close()

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=self.interval)
                return
            except asyncio.TimeoutError:
                pass
            try:
                await self.run_once()
            except Exception:  # keep monitoring whatever one round did
                log.exception("ronda de salud fallida")

    async def __aenter__(self) -> HealthMonitor:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def ping_all(
    config: Config,
    *,
    with_status: bool = False,
    token: str | None = None,
    ca_file: str | None = None,
) -> list[WorkerHealth]:
    """Ping every configured worker once, in parallel; records in config order."""
    registry = Registry.from_config(config, token=token, ca_file=ca_file)
    asyncio.run(registry.probe(with_status=with_status))
    return registry.snapshot()


def _with_ping_counters(ping: PingReply, status: WorkerStatus) -> WorkerStatus:
    """``status`` with the task counters of ``ping``, for a worker that is not partisim
    and keeps them only there (the users' original worker: ``successful_tasks``)."""
    if status.is_partisim or ping.successful_tasks is None:
        return status
    update = {"completed": ping.successful_tasks}
    if ping.failed_tasks is not None:
        update["failed"] = ping.failed_tasks
    return status.model_copy(update=update)
