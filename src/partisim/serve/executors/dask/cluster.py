"""A Dask cluster as the executor of ``partisim serve --dask``.

Dask does the placement. An attempt is one Dask task (key
``partisim-<task>-<attempt>-<session>``) running `dask_task.run_attempt` on whichever
worker Dask picks; the worker that really ran it comes back with the result and is what
the queue records. Our queue keeps durability, order and the retry budget: serve hands
Dask at most `PREFETCH` attempts per thread of the usable workers, in queue order, and
the rest waits in SQLite.

- Members, the version guard, starting and connecting the cluster: `provision.DaskProvision`.
  While the cluster has a worker the guard refused (or has not checked yet), tasks are
  restricted (``workers=``) to the good ones; a task that still reaches it (it joined
  between two looks) is refused there and put back without counting.
- A lost worker: the scheduler's "remove-worker" event lists the tasks it was
  processing. Ours among them are a failed attempt (`WorkerUnavailable`): their Dask task
  is cancelled (Dask would quietly run it again, uncounted) and the retry policy runs
  them again elsewhere as the next attempt. Each attempt has one outcome, once.
- Timeouts and cancel: the task kills its child process at its deadline; cancelling the
  future makes the Dask worker mark the task cancelled, which the task notices within
  50 ms, so the computation dies and the worker thread is free for the next task.
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
from datetime import datetime, timezone
from typing import Any

from pydantic import ValidationError

from partisim.errors import PartisimError, TaskNotStarted, TaskRejected, TaskTimedOut, WorkerFailed, WorkerUnavailable
from partisim.fleet import DaskSettings, DaskTarget
from partisim.protocol import ExecuteResult, MemberView
from partisim.serve.executors.base import Attempt, Executor, Outcome, Placement
from partisim.serve.executors.dask.provision import DaskProvision, require_dask
from partisim.serve.executors.dask.remote import AttemptReport, AttemptSpec, expected, run_attempt
from partisim.serve.queue.specs import step_warnings
from partisim.serve.queue.task import Task, TaskSpec

__all__ = ["DaskCluster", "MEMBER", "PREFETCH", "POLL_S"]

log = logging.getLogger(__name__)

#: the member an attempt is placed on until its worker is known
MEMBER = "dask"
#: attempts handed to Dask per usable worker thread: enough that a worker never waits
#: for serve between two tasks, few enough that the order stays the queue's. The window
#: is refilled when half of it is free, so tasks reach Dask in batches
PREFETCH = 4
#: how often the cluster's workers are asked about
POLL_S = 0.5
#: beyond a task's own timeout, how long the queue's record waits (informative: the task
#: itself kills its computation at the timeout)
DEADLINE_MARGIN_S = 60.0


@dataclass
class _InFlight:
    attempt: Attempt
    key: str
    future: Any  # distributed.Future; None until sent
    only: frozenset[str] | None  # strict restriction to these workers (None: any)
    workers: list[str] | None = None  # Dask's workers=
    loose: bool = False  # Dask's allow_other_workers=


def _iso() -> str:
    return datetime.now(timezone.utc).isoformat()


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
        self._inflight: dict[str, _InFlight] = {}  # Dask key -> attempt
        self._keys: dict[str, str] = {}  # task id -> Dask key
        self._reserved = 0  # placed, not yet launched
        self._ran: dict[str, int] = {}  # worker -> attempts it answered
        self._done: list[_InFlight] = []
        self._unsent: list[_InFlight] = []
        self._given_up: dict[str, str] = {}  # Dask key -> task id: attempts dropped on a worker's loss
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
        self._keys.clear()

    async def _drain(self) -> None:
        while self._inflight or self._done:
            self._settled.clear()
            await self._settled.wait()

    def members(self) -> list[MemberView]:
        return self.provision.views(self._ran)

    def _capacity(self) -> int:
        return PREFETCH * self.provision.threads()

    def _free(self) -> int:
        return max(0, self._capacity() - len(self._inflight) - self._reserved)

    def free_slots(self) -> int:
        # Refill in batches (half the window at a time): one submission to Dask per
        # batch instead of one per finished task, while the other half keeps the
        # workers busy.
        free = self._free()
        if free < max(1, self._capacity() // 2) and self._inflight:
            return 0
        return free

    # -- placement ------------------------------------------------------------------

    def bound(self, task: Task) -> float:
        return (task.timeout or self.settings.task_timeout) + DEADLINE_MARGIN_S

    def place(self, task: Task) -> Placement | None:
        if self._free() <= 0:
            return None
        self._reserved += 1
        return Placement(MEMBER, self.scheduler_address)

    def unplace(self, placement: Placement) -> None:
        self._reserved = max(0, self._reserved - 1)

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
        self._reserved = max(0, self._reserved - 1)
        task = attempt.task
        key = f"partisim-{task.id}-{attempt.number}-{self.session}"
        workers, loose = self._restrictions(task)
        entry = _InFlight(attempt, key, None, frozenset(workers) if workers and not loose else None, workers, loose)
        self._inflight[key] = entry
        self._keys[task.id] = key
        # The scheduler launches a round's attempts one after another: hand them to Dask
        # together, once the round is over (one graph update instead of one per task).
        if not self._unsent:
            asyncio.get_running_loop().call_soon(self._send)
        self._unsent.append(entry)

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
            specs = [
                AttemptSpec(
                    key=e.key,
                    benchmark=e.attempt.task.benchmark,
                    params=dict(e.attempt.task.params),
                    timeout=e.attempt.task.timeout or self.settings.task_timeout,
                    expects=expected(),
                    topic=self.topic,
                )
                for e in entries
            ]
            futures = self._client.map(
                run_attempt,
                specs,
                key=[e.key for e in entries],
                workers=list(workers) if workers is not None else None,
                allow_other_workers=loose,
                pure=False,
                retries=0,
            )
            for entry, future in zip(entries, futures, strict=True):
                entry.future = future

    def running(self, task_id: str) -> bool:
        key = self._keys.get(task_id)
        return key is not None and key in self._inflight

    # -- outcomes -------------------------------------------------------------------

    def _take(self, key: str) -> _InFlight | None:
        """Stop following ``key``: its slot is free; None if it was already settled."""
        entry = self._inflight.pop(key, None)
        if entry is not None and self._keys.get(entry.attempt.task_id) == key:
            del self._keys[entry.attempt.task_id]
        self._settled.set()
        return entry

    def _on_report(self, event: Any) -> None:
        """A task's report, sent as an event: it reaches us before Dask says the task
        finished (both come in order over the scheduler's one stream to us), so the
        result needs no gather."""
        try:
            _, data = event
            report = AttemptReport.from_event(data)
            key = str(data["key"])
        except (TypeError, ValueError, KeyError) as exc:
            log.warning("informe de tarea ilegible desde Dask: %s", exc)
            return
        entry = self._take(key)
        if entry is None:  # cancelled or lost meanwhile: its outcome was settled already
            task_id = self._given_up.pop(key, None)
            if task_id is not None and report.status == "success":
                # Dask ran it again before our cancel arrived: a second run of the task
                self.report_run(task_id, report.worker)
            return
        self._settle(entry, report)
        if entry.future is not None:
            entry.future.release()
        if self.free_slots() > 0:  # a scheduling round only when a batch can be sent
            self._wake()

    def _check_futures(self) -> None:
        """Attempts that ended without a report (an error of Dask's, a cancel by someone
        else, a worker without partisim): fetch what happened to them."""
        for key, entry in list(self._inflight.items()):
            if entry.future is not None and entry.future.status != "pending":
                self._take(key)
                self._done.append(entry)
        if self._done:
            self._done_event.set()

    async def _collect(self) -> None:
        """Deliver the outcomes `_check_futures` found (one gather for many)."""
        while True:
            await self._done_event.wait()
            self._done_event.clear()
            batch, self._done = self._done, []
            finished = [e for e in batch if e.future.status == "finished"]
            values = await self._gather(finished)
            for entry, value in zip(finished, values, strict=True):
                self._settle(entry, value)
            for entry in batch:
                if entry.future.status != "finished":
                    self._settle(entry, await self._failure(entry.future))
                entry.future.release()
            self._settled.set()
            self._wake()

    async def _gather(self, entries: list[_InFlight]) -> list[Any]:
        if not entries:
            return []
        try:
            values: list[Any] = await self._client.gather([e.future for e in entries])
            return values
        except Exception:  # one of them went bad: fetch them one by one
            out: list[Any] = []
            for entry in entries:
                try:
                    out.append(await self._client.gather(entry.future))
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
            outcome = self._outcome_of(attempt, value)
            if isinstance(outcome, ExecuteResult):
                self._ran[value.worker] = self._ran.get(value.worker, 0) + 1
            self.deliver(attempt, outcome, value.worker)
            return
        self.deliver(attempt, self._error_of(value))

    def _outcome_of(self, attempt: Attempt, report: AttemptReport) -> Outcome:
        where = report.worker
        if report.status == "success" and report.result is not None:
            try:
                return ExecuteResult.model_validate(
                    {
                        **report.result.to_dict(),
                        "task_id": attempt.task_id,
                        "worker_id": where,
                        "benchmark": attempt.task.benchmark,
                        "execution_time": report.elapsed,
                        "runner": "dask",
                        "threads_requested": attempt.task.threads if attempt.task.threads > 1 else None,
                        "timestamp": _iso(),
                        # what an HTTP worker says of these parameters, said here (cached per box and step)
                        "warnings": step_warnings([TaskSpec(attempt.task.benchmark, attempt.task.params)]),
                    }
                )
            except ValidationError as exc:
                bad = ", ".join(str(e["loc"][0]) for e in exc.errors() if e.get("loc"))
                return TaskRejected(
                    f"la simulación dio valores no finitos o incompletos ({bad}); "
                    "reduzca VELOCIDAD_INICIAL_MAX, DT o el tamaño del mundo",
                    422,
                )
        if report.status == "refused":
            member = self.provision.members.get(where)
            if member is not None:
                self.provision.refuse(member, f"{report.message}: no se usará")
            return TaskNotStarted(report.message)
        if report.status == "timeout":
            return TaskTimedOut(f"{where}: {report.message}", 504)
        if report.status == "invalid":
            return TaskRejected(report.message, 422)
        if report.status == "cancelled":  # not by us (we stop following what we cancel)
            return WorkerUnavailable(f"{where}: {report.message}")
        return WorkerFailed(f"{where}: {report.message}", 500)

    def _error_of(self, exc: BaseException) -> PartisimError:
        if isinstance(exc, PartisimError):
            return exc
        if isinstance(exc, ImportError):
            # a worker that cannot import partisim got the task before the guard saw it:
            # the attempt never started; look at the workers again now
            self.provision.recheck()
            return TaskNotStarted(f"un worker Dask no pudo cargar la tarea: {exc}")
        if type(exc).__name__ == "KilledWorker":
            return WorkerFailed(f"Dask: la tarea estaba en workers que se perdieron ({exc})", 500)
        return WorkerFailed(f"Dask: {type(exc).__name__}: {exc}", 500)

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
            entry = self._take(str(key))
            if entry is None:
                continue
            self._drop(entry)
            self._given_up[entry.key] = entry.attempt.task_id
            self.deliver(
                entry.attempt,
                WorkerUnavailable(f"se perdió el worker Dask {address} mientras ejecutaba la tarea"),
                address or None,
            )
        self.provision.forget(address)
        self._wake()

    def _drop(self, entry: _InFlight) -> None:
        """Cancel the Dask task of an attempt we no longer follow (its computation dies)."""
        if self._client is None or entry.future is None:
            return  # never sent: nothing runs
        asyncio.get_running_loop().create_task(self._cancel_future(entry.future))

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
            self._drop(entry)
        self._wake()

    def _check_restricted(self) -> None:
        """Attempts kept to workers that are all gone would wait forever: put them back."""
        live = {m.address for m in self.provision.usable()}
        for key, entry in list(self._inflight.items()):
            if entry.only is not None and not entry.only & live:
                self._take(key)
                self._drop(entry)
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
