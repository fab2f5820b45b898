"""A Dask cluster as the executor of ``partisim serve --dask``.

Dask does the placement. Attempts reach Dask as Dask tasks running `remote.run_batch` on
whichever worker Dask picks; the worker that really ran each attempt comes back with its
result and is what the queue records. An attempt run in a killable child (the usual
case) is a Dask task of its own, keyed ``partisim-<task>-<attempt>-<session>``. An
attempt far below its deadline (`sim.cost.tiny`: milliseconds of work against minutes)
runs in the worker's thread, and up to `UNIT` of them share one Dask task: a tiny task
then costs what it costs on plain Dask, not a Dask task and a child hand-off each.

Our queue keeps durability, order and the retry budget: serve hands Dask a window of
`CHILD_PREFETCH` child attempts (or `PREFETCH` × `UNIT` inline ones) per thread of the
usable workers, in queue order, and the rest waits in SQLite. Long attempts are few in
Dask at a time because Dask gives each of them to a worker as soon as it has it: with
more, one worker could be left holding several long ones while the other has finished. Every attempt is claimed in the
queue before it is sent and has one outcome, once, whichever Dask task carried it.

- Members, the version guard, starting and connecting the cluster: `provision.DaskProvision`.
  While the cluster has a worker the guard refused (or has not checked yet), tasks are
  restricted (``workers=``) to the good ones; a task that still reaches it (it joined
  between two looks) is refused there and put back without counting.
- A lost worker: the scheduler's "remove-worker" event lists the tasks it was
  processing. The attempts of ours among them are failed (`WorkerUnavailable`): their Dask task
  is cancelled (Dask would quietly run it again, uncounted) and the retry policy runs
  them again elsewhere as the next attempt. Each attempt has one outcome, once.
- Timeouts and cancel: the task kills its child process at its deadline; cancelling the
  future makes the Dask worker mark the task cancelled, which the task notices within
  50 ms, so the computation dies and the worker thread is free for the next task. A
  cancelled inline attempt is only forgotten (its batch ends in milliseconds anyway);
  the batch is cancelled once none of its attempts is followed.
- A restart: the futures of the dead serve's client are gone (Dask released them and the
  tasks killed their children), so `resume` answers False and the scheduler puts those
  tasks back in the queue without counting the attempt.

Threads: an attempt holds one thread of a Dask worker, and Dask places it knowing
nothing more, so a task's ``threads`` are not used here: each simulation runs on one
thread (its result says ``threads`` 1 and ``threads_requested`` what the task asked
for). Several threads would oversubscribe the worker's other task threads.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from partisim.errors import ParamsError, TaskNotStarted, WorkerFailed, WorkerUnavailable
from partisim.fleet import DaskSettings, DaskTarget
from partisim.protocol import ExecuteResult, MemberView
from partisim.serve.executors.base import Attempt, Executor, Placement
from partisim.serve.executors.dask.outcomes import error_of, outcome_of
from partisim.serve.executors.dask.provision import DaskProvision, require_dask
from partisim.serve.executors.dask.remote import AttemptReport, AttemptSpec, expected, run_batch
from partisim.serve.queue.task import Task
from partisim.sim import parse_params
from partisim.sim.cost import tiny

__all__ = ["DaskCluster", "MEMBER", "PREFETCH", "CHILD_PREFETCH", "POLL_S"]

log = logging.getLogger(__name__)

#: the member an attempt is placed on until its worker is known
MEMBER = "dask"
#: batches of inline attempts handed to Dask per usable worker thread: enough that a
#: worker never waits for serve between two of them, few enough that the order stays the
#: queue's. The window is refilled once a batch's worth of it is free
PREFETCH = 4
#: inline attempts (far below their deadline, `sim.cost.tiny`) in one Dask task; each
#: takes 1 unit of the window
UNIT = 16
#: attempts run in a child process handed to Dask per usable worker thread: the one it
#: runs and the next one (as Dask itself sends a worker at most about two of its queued
#: tasks, its default worker-saturation). With 4 per thread, Dask gave a worker 5 of
#: the first 8 tasks of a sweep of ~1 s tasks and the other 3: the sweep ended on one
#: worker while the other idled
CHILD_PREFETCH = 2
#: the window's units an attempt run in a child takes
CHILD_UNITS = PREFETCH * UNIT // CHILD_PREFETCH
#: how often the cluster's workers are asked about
POLL_S = 0.5
#: beyond a task's own timeout, how long the queue's record waits (informative: the task
#: itself kills its computation at the timeout)
DEADLINE_MARGIN_S = 60.0


@dataclass(eq=False)
class _InFlight:
    """One attempt handed to Dask."""

    attempt: Attempt
    key: str  # the attempt's own key (the Dask key of its batch when it runs alone)
    units: int  # of the window: 1 for an inline attempt, `CHILD_UNITS` for one in a child
    only: frozenset[str] | None  # strict restriction to these workers (None: any)
    workers: list[str] | None = None  # Dask's workers=
    loose: bool = False  # Dask's allow_other_workers=
    batch: _Batch | None = None

    @property
    def inline(self) -> bool:
        return self.units < CHILD_UNITS


@dataclass(eq=False)
class _Batch:
    """One Dask task: its attempts, run one after another by `remote.run_batch`."""

    key: str
    entries: list[_InFlight]
    future: Any = None  # distributed.Future


class DaskCluster(Executor):
    kind = "dask"

    def __init__(self, target: DaskTarget, settings: DaskSettings, *, poll_interval: float = POLL_S) -> None:
        super().__init__()
        self.target = target
        self.settings = settings
        self.poll_interval = poll_interval
        self.session = secrets.token_hex(3)  # keys of this serve never collide with a previous one's
        self.topic = f"partisim-{self.session}"  # where this serve's tasks send their reports
        self.provision = DaskProvision(target, settings, self._wake_up)
        self._inflight: dict[str, _InFlight] = {}  # attempt key -> attempt
        self._batches: dict[str, _Batch] = {}  # Dask key -> its attempts, until the task is released
        self._keys: dict[str, str] = {}  # task id -> attempt key
        self._load = 0  # units of the window taken by the attempts in flight
        self._reserved = 0  # units placed, not yet launched
        self._ran: dict[str, int] = {}  # worker -> attempts it answered
        self._done: list[tuple[_Batch, list[_InFlight]]] = []
        self._unsent: list[_InFlight] = []
        self._given_up: dict[str, str] = {}  # attempt key -> task id: attempts dropped on a worker's loss
        self._held = False  # a task did not fit in this round's window
        self._sequence = 0  # numbers the Dask keys of batches of several attempts
        self._done_event = asyncio.Event()
        self._settled = asyncio.Event()  # set whenever attempts stop being followed
        self._jobs: list[asyncio.Task[None]] = []

    # -- life cycle -----------------------------------------------------------------

    def _wake_up(self) -> None:
        self._wake()

    @property
    def scheduler_address(self) -> str:
        return self.provision.scheduler_address

    @property
    def dashboard(self) -> str | None:
        return self.provision.dashboard

    @property
    def _client(self) -> Any:
        return self.provision.client

    def _topics(self) -> dict[str, Any]:
        return {"all": self._on_cluster_event, self.topic: self._on_report}

    async def start(self) -> None:
        """Start the cluster (local:N, slurm, pbs), connect, check the workers. What
        fails here is logged in Spanish and serve keeps answering, with no worker (its
        tasks wait in the queue); the connection is tried again every `RECONNECT_S`."""
        require_dask(self.target.kind)
        await self.provision.start_cluster()
        if self.provision.scheduler_address:
            await self.provision.connect(self._topics())
        loop = asyncio.get_running_loop()
        self._jobs = [
            loop.create_task(self._poll(), name="partisim-dask-poll"),
            loop.create_task(self._collect(), name="partisim-dask-collect"),
        ]

    async def stop(self, grace: float) -> None:
        if self._inflight:
            log.info("esperando %d tareas en curso en Dask (hasta %.0f s)", len(self._inflight), grace)
            try:
                await asyncio.wait_for(self._drain(), timeout=grace)
            except asyncio.TimeoutError:
                pass
        for job in self._jobs:
            job.cancel()
        await asyncio.gather(*self._jobs, return_exceptions=True)
        self._jobs = []
        # The queue keeps unfinished attempts running; the next start puts them back.
        await self.provision.close(list(self._topics()))
        self._inflight.clear()
        self._batches.clear()
        self._keys.clear()
        self._load = 0

    async def _drain(self) -> None:
        while self._inflight or self._done:
            self._settled.clear()
            await self._settled.wait()

    def members(self) -> list[MemberView]:
        return self.provision.views(self._ran)

    def _capacity(self) -> int:
        return PREFETCH * UNIT * self.provision.threads()

    def _free(self) -> int:
        return max(0, self._capacity() - self._load - self._reserved)

    def free_slots(self) -> int:
        # Refill once a batch of inline attempts (or one child attempt) fits: one
        # submission to Dask per batch instead of one per finished tiny task.
        free = self._free()
        if self._held or (free < UNIT and self._inflight):
            return 0
        return free

    def round_start(self) -> None:
        self._held = False

    # -- placement ------------------------------------------------------------------

    def bound(self, task: Task) -> float:
        return (task.timeout or self.settings.task_timeout) + DEADLINE_MARGIN_S

    def _units(self, task: Task) -> int:
        """1 for an attempt that will run inline in the Dask worker's thread, else `CHILD_UNITS`."""
        try:
            params = parse_params(task.params)
        except ParamsError:
            return CHILD_UNITS  # the worker says what is wrong with them
        return 1 if tiny(params, task.timeout or self.settings.task_timeout) else CHILD_UNITS

    def place(self, task: Task) -> Placement | None:
        units = self._units(task)
        if self._free() < units:
            self._held = True  # queue order: nothing behind it goes first in this round
            return None
        self._reserved += units
        return Placement(MEMBER, self.scheduler_address, units)

    def unplace(self, placement: Placement) -> None:
        self._reserved = max(0, self._reserved - placement.slots)

    def _restrictions(self, task: Task) -> tuple[list[str] | None, bool]:
        """Dask's ``workers=`` and ``allow_other_workers=`` for this task."""
        usable = [m.address for m in self.provision.usable()]
        strict: list[str] | None = None
        if usable and any(not m.usable for m in self.provision.members.values()):
            strict = usable  # some worker is refused or not checked yet: keep off it
        if task.exclude_worker in usable and len(usable) > 1:
            # a verification run must come from another worker
            strict = [a for a in (strict or usable) if a != task.exclude_worker]
        if strict is not None:
            return strict, False
        if task.avoid_worker in usable and len(usable) > 1:
            return [a for a in usable if a != task.avoid_worker], True  # a retry prefers another worker
        return None, False

    def launch(self, attempt: Attempt) -> None:
        units = attempt.placement.slots
        self._reserved = max(0, self._reserved - units)
        self._load += units
        task = attempt.task
        key = f"partisim-{task.id}-{attempt.number}-{self.session}"
        workers, loose = self._restrictions(task)
        only = frozenset(workers) if workers and not loose else None
        entry = _InFlight(attempt, key, units, only, workers, loose)
        self._inflight[key] = entry
        self._keys[task.id] = key
        # The scheduler launches a round's attempts one after another: hand them to Dask
        # together, once the round is over (one graph update instead of one per task).
        if not self._unsent:
            asyncio.get_running_loop().call_soon(self._send)
        self._unsent.append(entry)

    def _batched(self, entries: list[_InFlight]) -> list[list[_InFlight]]:
        """Each attempt run in a child alone; inline ones together, in as many Dask tasks
        as keep every worker thread busy twice over, at most `UNIT` attempts in each."""
        alone = [[e] for e in entries if not e.inline]
        small = [e for e in entries if e.inline]
        if not small:
            return alone
        spread = max(1, 2 * self.provision.threads())
        size = max(1, min(UNIT, -(-len(small) // spread)))
        return alone + [small[i : i + size] for i in range(0, len(small), size)]

    def _batch_key(self, entries: list[_InFlight]) -> str:
        if len(entries) == 1:
            return entries[0].key
        self._sequence += 1
        return f"partisim-batch-{self._sequence}-{self.session}"

    def _send(self) -> None:
        batch, self._unsent = self._unsent, []
        if self._client is None:
            return  # stopped meanwhile: these stay running in the queue and go back at the next start
        groups: dict[tuple[tuple[str, ...] | None, bool], list[_InFlight]] = {}
        for entry in batch:
            if entry.key not in self._inflight:
                continue  # cancelled before it was sent
            group = (tuple(entry.workers) if entry.workers is not None else None, entry.loose)
            groups.setdefault(group, []).append(entry)
        for (workers, loose), entries in groups.items():
            batches = [_Batch(self._batch_key(chunk), chunk) for chunk in self._batched(entries)]
            specs = [[self._spec(e) for e in b.entries] for b in batches]
            futures = self._client.map(
                run_batch,
                specs,
                key=[b.key for b in batches],
                workers=list(workers) if workers is not None else None,
                allow_other_workers=loose,
                pure=False,
                retries=0,
            )
            for b, future in zip(batches, futures, strict=True):
                b.future = future
                self._batches[b.key] = b
                for entry in b.entries:
                    entry.batch = b

    def _spec(self, entry: _InFlight) -> AttemptSpec:
        task = entry.attempt.task
        return AttemptSpec(
            key=entry.key,
            benchmark=task.benchmark,
            params=dict(task.params),
            timeout=task.timeout or self.settings.task_timeout,
            expects=expected(),
            topic=self.topic,
            inline=entry.inline,
        )

    def running(self, task_id: str) -> bool:
        key = self._keys.get(task_id)
        return key is not None and key in self._inflight

    # -- outcomes -------------------------------------------------------------------

    def _take(self, key: str) -> _InFlight | None:
        """Stop following attempt ``key``: its units are free; None if it was already settled."""
        entry = self._inflight.pop(key, None)
        if entry is not None:
            self._load = max(0, self._load - entry.units)
            if self._keys.get(entry.attempt.task_id) == key:
                del self._keys[entry.attempt.task_id]
        self._settled.set()
        return entry

    def _live(self, batch: _Batch) -> list[_InFlight]:
        return [e for e in batch.entries if e.key in self._inflight]

    def _on_report(self, event: Any) -> None:
        """A batch's reports, sent as an event: they reach us before Dask says the task
        finished (both come in order over the scheduler's one stream to us), so the
        results need no gather."""
        try:
            _, data = event
            reports = [(str(r["key"]), AttemptReport.from_event(r)) for r in data["reports"]]
            batch_key = str(data["batch"])
        except (TypeError, ValueError, KeyError) as exc:
            log.warning("informe de tarea ilegible desde Dask: %s", exc)
            return
        for key, report in reports:
            entry = self._take(key)
            if entry is None:  # cancelled or lost meanwhile: its outcome was settled already
                task_id = self._given_up.pop(key, None)
                if task_id is not None and report.status == "success":
                    # Dask ran it again before our cancel arrived: a second run of the task
                    self.report_run(task_id, report.worker)
                continue
            self._settle(entry, report)
        batch = self._batches.pop(batch_key, None)
        if batch is not None and batch.future is not None:
            batch.future.release()
        if self.free_slots() > 0:  # a scheduling round only when a batch can be sent
            self._wake()

    def _check_futures(self) -> None:
        """Batches that ended without a report (an error of Dask's, a cancel by someone
        else, a worker without partisim): fetch what happened to their attempts."""
        for key, batch in list(self._batches.items()):
            if batch.future is not None and batch.future.status != "pending":
                del self._batches[key]
                live = self._live(batch)
                for entry in live:
                    self._take(entry.key)
                self._done.append((batch, live))
        if self._done:
            self._done_event.set()

    async def _collect(self) -> None:
        """Deliver the outcomes `_check_futures` found (one gather for many)."""
        while True:
            await self._done_event.wait()
            self._done_event.clear()
            done, self._done = self._done, []
            finished = [(b, live) for b, live in done if live and b.future.status == "finished"]
            values = await self._gather([b for b, _ in finished])
            for (b, live), value in zip(finished, values, strict=True):
                if isinstance(value, list) and len(value) == len(b.entries):
                    for entry, report in zip(b.entries, value, strict=True):
                        if entry in live:
                            self._settle(entry, report)
                else:
                    error = (
                        value
                        if isinstance(value, BaseException)
                        else WorkerFailed(f"Dask: respuesta inesperada {value!r}", 500)
                    )
                    for entry in live:
                        self._settle(entry, error)
            for b, live in done:
                if live and b.future.status != "finished":
                    failure = await self._failure(b.future)
                    for entry in live:
                        self._settle(entry, failure)
                b.future.release()
            self._settled.set()
            self._wake()

    async def _gather(self, batches: list[_Batch]) -> list[Any]:
        if not batches:
            return []
        try:
            values: list[Any] = await self._client.gather([b.future for b in batches])
            return values
        except Exception:  # one of them went bad: fetch them one by one
            out: list[Any] = []
            for b in batches:
                try:
                    out.append(await self._client.gather(b.future))
                except Exception as exc:
                    out.append(exc)
            return out

    async def _failure(self, future: Any) -> BaseException:
        if future.status == "error":
            try:
                exc: BaseException = await future.exception()
                return exc
            except Exception as exc:
                return exc
        return WorkerUnavailable(
            f"Dask abandonó la tarea (estado {future.status}; ¿se perdió la conexión con el planificador?)"
        )

    def _settle(self, entry: _InFlight, value: Any) -> None:
        attempt = entry.attempt
        if isinstance(value, AttemptReport):
            outcome = outcome_of(attempt, value)
            if isinstance(outcome, ExecuteResult):
                self._ran[value.worker] = self._ran.get(value.worker, 0) + 1
            elif value.status == "refused":
                member = self.provision.members.get(value.worker)
                if member is not None:
                    self.provision.refuse(member, f"{value.message}: no se usará")
            self.deliver(attempt, outcome, value.worker)
            return
        if isinstance(value, ImportError):
            # a worker that cannot import partisim got the task before the guard saw it:
            # the attempt never started; look at the workers again now
            self.provision.recheck()
        self.deliver(attempt, error_of(value))

    # -- lost workers and cancels ---------------------------------------------------------

    def _on_cluster_event(self, event: Any) -> None:
        """The scheduler's events: a removed worker takes its processing tasks with it."""
        try:
            _, message = event
        except (TypeError, ValueError):
            return
        if not isinstance(message, dict) or message.get("action") != "remove-worker":
            return
        address = str(message.get("worker", ""))
        keys = message.get("processing-tasks") or ()
        for key in list(keys):
            batch = self._batches.pop(str(key), None)
            if batch is None:
                continue
            live = self._live(batch)
            for entry in live:
                self._take(entry.key)
            self._drop(batch)
            for entry in live:
                self._given_up[entry.key] = entry.attempt.task_id
                self.deliver(
                    entry.attempt,
                    WorkerUnavailable(f"se perdió el worker Dask {address} mientras ejecutaba la tarea"),
                    address or None,
                )
        self.provision.forget(address)
        self._wake()

    def _drop(self, batch: _Batch) -> None:
        """Cancel a Dask task none of whose attempts we follow any more (its computation dies)."""
        self._batches.pop(batch.key, None)
        if self._client is None or batch.future is None:
            return  # never sent: nothing runs
        asyncio.get_running_loop().create_task(self._cancel_future(batch.future))

    def _retire(self, entry: _InFlight) -> None:
        """After ``entry`` stopped being followed: cancel its Dask task if nothing else of
        it is (the other inline attempts of a batch finish anyway, in milliseconds)."""
        if entry.batch is not None and not self._live(entry.batch):
            self._drop(entry.batch)

    async def _cancel_future(self, future: Any) -> None:
        try:
            await self._client.cancel([future])
        except Exception as exc:
            log.info("no se pudo cancelar %s en Dask: %s", future.key, exc)
        future.release()

    def cancel(self, task_id: str, member: str | None, address: str | None) -> None:
        key = self._keys.get(task_id)
        entry = self._take(key) if key is not None else None
        if entry is not None:
            self._retire(entry)
        self._wake()

    def _check_restricted(self) -> None:
        """Attempts kept to workers that are all gone would wait forever: put them back."""
        live = {m.address for m in self.provision.usable()}
        for key, entry in list(self._inflight.items()):
            if entry.only is not None and not entry.only & live:
                self._take(key)
                self._retire(entry)
                self.deliver(
                    entry.attempt,
                    TaskNotStarted("ninguno de los workers Dask permitidos para la tarea sigue en el clúster"),
                )

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            if self._client is None:
                if self.provision.reconnect_due():
                    await self.provision.connect(self._topics())
                continue
            try:
                await self.provision.refresh()
                self._check_futures()
                if self.provision.connected:
                    self._check_restricted()
            except Exception:  # one bad look must not stop watching the cluster
                log.exception("no se pudo consultar el clúster Dask")

    # -- recovery -------------------------------------------------------------------

    def resume(self, task: Task) -> bool:
        # A previous serve's futures died with its client: nothing to follow.
        return False

    def active_members(self) -> int:
        return len(self.provision.usable()) if self.provision.connected else 0
