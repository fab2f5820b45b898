"""The one place that starts and kills a computation.

A `Runner` runs one `Job` and returns the `SimResult.to_dict()` of it, or
raises: `TaskTimedOut` (the computation was killed at its deadline),
`WorkerFailed` (it crashed), `WorkerUnavailable` (the runner cannot run
anything now). Cancelling the awaiting asyncio task kills the computation too.

- `ProcessRunner`: a warm pool of child processes, one task per child at a
  time. A child that times out, crashes or is cancelled is killed and replaced,
  so nothing of a bad task survives it and the worker goes on serving.
- `DockerRunner`: `docker run --rm --network none` with CPU, memory and pids
  limits, reading the JSON that `partisim run --json` prints in the container.

The caller (`tasks.TaskManager`) guarantees at most `capacity` slots in use at once
(a job of k threads takes k of them).
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import os
import re
import secrets
import shutil
import signal
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext, SpawnContext
from multiprocessing.process import BaseProcess
from typing import Any

from partisim.errors import ParamsError, PartisimError, TaskTimedOut, WorkerFailed, WorkerUnavailable, explain_os_error
from partisim.images import SIM_IMAGE
from partisim.sim import ENGINES, SimParams
from partisim.sim.options import OPTIONS as RUN_OPTIONS

__all__ = [
    "Job",
    "Runner",
    "ProcessRunner",
    "DockerRunner",
    "DockerProbe",
    "DockerStatus",
    "select_runner",
]

log = logging.getLogger(__name__)

OnStarted = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Job:
    task_id: str
    engine: str
    params: SimParams
    timeout: float
    threads: int = 1  # already capped by the caller


class Runner(ABC):
    name: str = "?"

    async def start(self) -> None:
        """Get ready to run (e.g. warm a process pool)."""

    async def ensure_ready(self) -> None:
        """Raise `WorkerUnavailable` if no job could be run now."""

    @abstractmethod
    async def run(self, job: Job, on_started: OnStarted | None = None) -> dict[str, Any]:
        """Run one job; `on_started` receives what identifies the computation (pid, container)."""

    async def close(self) -> None:
        """Kill whatever still runs and release resources."""


# --------------------------------------------------------------------------- process


def _lifeline(worker_pid: int) -> None:
    """Exit this child as soon as the worker process is gone (even by SIGKILL).

    The fork server, not the worker, is our parent, so PR_SET_PDEATHSIG would not
    fire; a pidfd becomes readable when the worker exits, with no polling.
    """
    if sys.platform == "win32":  # spawn there: children die with their job object / parent
        return
    import select
    import threading

    def watch() -> None:
        try:
            fd = os.pidfd_open(worker_pid)
        except (AttributeError, OSError):
            fd = None
        if fd is not None:
            select.select([fd], [], [])
        else:  # no pidfd (old kernel, macOS): look once a second
            while True:
                time.sleep(1.0)
                try:
                    os.kill(worker_pid, 0)
                except ProcessLookupError:
                    break
                except PermissionError:
                    pass
        os._exit(1)

    threading.Thread(target=watch, name="partisim-lifeline", daemon=True).start()


def _limit_memory(extra_mb: int) -> None:
    """Cap this child's address space at its current size plus `extra_mb`."""
    try:
        import resource

        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[0])
        current = pages * os.sysconf("SC_PAGE_SIZE")
        limit = current + extra_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, OSError, ValueError):
        log.warning("no se pudo limitar la memoria de las tareas en este sistema")


def _child_main(conn: Connection, memory_mb: int | None, worker_pid: int) -> None:
    """Body of a pool process: run jobs received on `conn` until it closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the worker; it stops us
    _lifeline(worker_pid)
    from partisim.sim import get_engine, simulate

    for engine in ENGINES:  # import every engine now, not during the first task
        try:
            get_engine(engine)
        except ImportError:
            pass
    if memory_mb:
        _limit_memory(memory_mb)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            engine, params, threads = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        recycle = False
        try:
            # Several threads are safe here: this process was forked from the fork server,
            # which never ran a parallel region (the engine itself falls back to one thread
            # in a child forked after one, see its `max_threads`).
            reply: tuple[Any, ...] = ("ok", simulate(params, engine, threads).to_dict())
        except MemoryError:
            reply, recycle = ("error", "memory", "memoria insuficiente para esta tarea"), True
        except PartisimError as exc:
            reply = ("error", "invalid", exc.message)
        except Exception as exc:  # the task failed; the process is still sound
            reply = ("error", "crash", f"{type(exc).__name__}: {exc}")
        try:
            conn.send(reply)
        except (OSError, ValueError):
            return
        if recycle:
            return  # a fresh process for the next task


def _exit_reason(exitcode: int | None) -> str:
    if exitcode is None:
        return "terminó de forma inesperada"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = str(-exitcode)
        return f"terminó por la señal {name}"
    return f"terminó con código {exitcode}"


@dataclass(eq=False)
class _Child:
    proc: BaseProcess
    conn: Connection
    pid: int = 0

    def alive(self) -> bool:
        return self.proc.is_alive()


class ProcessRunner(Runner):
    """Each job in a process of a warm pool; a bad job only takes its own process down."""

    name = "process"

    def __init__(self, capacity: int, *, task_memory_mb: int | None = None) -> None:
        self.capacity = capacity
        self.task_memory_mb = task_memory_mb
        forkserver = "forkserver" in multiprocessing.get_all_start_methods()
        self._ctx: ForkServerContext | SpawnContext = (
            multiprocessing.get_context("forkserver") if forkserver else multiprocessing.get_context("spawn")
        )
        if isinstance(self._ctx, ForkServerContext):
            # Imported once in the fork server, so a replacement child is warm at once.
            self._ctx.set_forkserver_preload(
                [
                    "partisim.worker.runners",
                    "partisim.sim",
                    "partisim.sim.engines.python",
                    "partisim.sim.engines.numpy_",
                    "partisim.sim.engines._cython",
                ]
            )
        self._idle: list[_Child] = []
        self._busy: set[_Child] = set()
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="partisim-spawn")
        self._closed = False
        self._refill: asyncio.Task[None] | None = None

    # -- pool management (blocking parts run in the spawner thread) --

    def _spawn_sync(self) -> _Child:
        # One BLAS thread per child: `capacity` children already fill the CPUs. A task's
        # own threads are asked for explicitly (the engine's num_threads), not by these.
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, "1")
        parent, child = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(
            target=_child_main, args=(child, self.task_memory_mb, os.getpid()), name="partisim-task", daemon=True
        )
        proc.start()
        child.close()  # only the child holds its end: its death reads as EOF here
        if not parent.poll(60):
            proc.kill()
            raise WorkerUnavailable("el proceso de tareas no arrancó en 60 s")
        try:
            _, pid = parent.recv()
        except (EOFError, OSError):
            proc.join(5)
            raise WorkerUnavailable(f"el proceso de tareas {_exit_reason(proc.exitcode)} al arrancar") from None
        return _Child(proc, parent, pid)

    async def _spawn(self) -> _Child:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._spawner, self._spawn_sync)

    def _kill_sync(self, child: _Child) -> int | None:
        try:
            child.proc.kill()
        except (OSError, ValueError):
            pass
        child.proc.join(10)
        try:
            child.conn.close()
        except OSError:
            pass
        return child.proc.exitcode

    async def _discard(self, child: _Child) -> int | None:
        self._busy.discard(child)
        loop = asyncio.get_running_loop()
        exitcode = await loop.run_in_executor(None, self._kill_sync, child)
        self._schedule_refill()
        return exitcode

    def _schedule_refill(self) -> None:
        if self._closed or (self._refill and not self._refill.done()):
            return
        self._refill = asyncio.get_running_loop().create_task(self._fill())

    async def _fill(self) -> None:
        while not self._closed and len(self._idle) + len(self._busy) < self.capacity:
            try:
                child = await self._spawn()
            except (PartisimError, OSError) as exc:
                log.error("no se pudo reponer un proceso de tareas: %s", exc)
                return
            if self._closed:
                self._kill_sync(child)
                return
            self._idle.append(child)

    async def start(self) -> None:
        await self._fill()
        if not self._idle:
            raise WorkerUnavailable("no se pudo iniciar ningún proceso de tareas")

    async def ensure_ready(self) -> None:
        if self._closed:
            raise WorkerUnavailable("el worker se está deteniendo")

    # -- running one job --

    async def _reply(self, conn: Connection) -> Any:
        """The child's reply; EOFError if it died first."""
        if sys.platform == "win32":  # no add_reader on the proactor loop
            await asyncio.to_thread(conn.poll, None)
            return conn.recv()
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        fd = conn.fileno()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(fd, wake)
        try:
            await ready
        finally:
            loop.remove_reader(fd)
        return conn.recv()

    async def run(self, job: Job, on_started: OnStarted | None = None) -> dict[str, Any]:
        await self.ensure_ready()
        child = None
        while self._idle:
            candidate = self._idle.pop()
            if candidate.alive():
                child = candidate
                break
            await self._discard(candidate)
        if child is None:
            child = await self._spawn()
        self._busy.add(child)
        if on_started:
            on_started({"pid": child.pid})
        try:
            child.conn.send((job.engine, job.params, job.threads))
            reply = await asyncio.wait_for(self._reply(child.conn), timeout=job.timeout)
        except (TimeoutError, asyncio.TimeoutError):
            await self._discard(child)
            raise TaskTimedOut(f"la tarea superó su tiempo límite de {job.timeout:g} s y se detuvo") from None
        except (EOFError, OSError):
            exitcode = await self._discard(child)
            raise WorkerFailed(
                f"el proceso de la tarea {_exit_reason(exitcode)}; el worker sigue activo", 500
            ) from None
        except BaseException:  # cancelled (or anything else): the child may be mid-task
            await asyncio.shield(self._discard(child))
            raise
        if reply[0] == "ok":
            self._release(child)
            result: dict[str, Any] = reply[1]
            return result
        _, kind, message = reply
        if kind == "memory":
            await self._discard(child)
        else:
            self._release(child)
        if kind == "invalid":
            raise ParamsError(message)
        raise WorkerFailed(f"la simulación falló: {message}", 500)

    def _release(self, child: _Child) -> None:
        self._busy.discard(child)
        if self._closed or len(self._idle) >= self.capacity:
            self._kill_sync(child)
        else:
            self._idle.append(child)

    async def close(self) -> None:
        self._closed = True
        if self._refill:
            self._refill.cancel()
        children = [*self._idle, *self._busy]
        self._idle.clear()
        self._busy.clear()
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(None, self._kill_sync, c) for c in children))
        self._spawner.shutdown(wait=False, cancel_futures=True)


# --------------------------------------------------------------------------- docker


@dataclass(frozen=True)
class DockerStatus:
    available: bool
    image_available: bool
    image: str
    version: str | None = None
    error: str | None = None
    checked_at: float = field(default_factory=time.monotonic)
    image_id: str | None = None  # the image's content id (``docker image inspect``)

    def as_dict(self) -> dict[str, Any]:
        return {
            "docker_available": self.available,
            "image_available": self.image_available,
            "docker_image": self.image,
            "docker_version": self.version,
            "docker_error": self.error,
        }


async def _exec(argv: list[str], timeout: float) -> tuple[int, str, str]:
    """Run a short command; (returncode, stdout, stderr). Raises OSError if it cannot start."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except (TimeoutError, asyncio.TimeoutError):
        proc.kill()
        await proc.wait()
        return -1, "", f"sin respuesta en {timeout:g} s"
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


class DockerProbe:
    """Is Docker usable, and is the image there? Cached, one probe in flight at a time."""

    def __init__(
        self, docker_bin: str = "docker", image: str = SIM_IMAGE, *, ttl: float = 5.0, timeout: float = 5.0
    ) -> None:
        self.docker_bin = docker_bin
        self.image = image
        self.ttl = ttl
        self.timeout = timeout
        self._last: DockerStatus | None = None
        self._inflight: asyncio.Future[DockerStatus] | None = None

    @property
    def last(self) -> DockerStatus | None:
        return self._last

    def invalidate(self) -> None:
        """Forget the cached answer (Docker just failed us)."""
        self._last = None

    async def check(self, max_age: float | None = None) -> DockerStatus:
        age = self.ttl if max_age is None else max_age
        last = self._last
        if last is not None and time.monotonic() - last.checked_at <= age:
            return last
        status = await asyncio.shield(self._probing())
        self._last = status
        return status

    async def current(self) -> DockerStatus:
        """The last answer at once (refreshed in the background when stale), for /status."""
        last = self._last
        if last is None:
            return await self.check()
        if time.monotonic() - last.checked_at > self.ttl:
            self._probing()
        return last

    def _probing(self) -> asyncio.Future[DockerStatus]:
        """The probe in flight, started if none is; its answer is stored when it lands."""
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.ensure_future(self._probe())
            self._inflight.add_done_callback(self._store)
        return self._inflight

    def _store(self, fut: asyncio.Future[DockerStatus]) -> None:
        if not fut.cancelled() and fut.exception() is None:
            self._last = fut.result()

    async def _probe(self) -> DockerStatus:
        binary = shutil.which(self.docker_bin)
        if binary is None:
            return DockerStatus(False, False, self.image, error=f"no se encontró el ejecutable {self.docker_bin!r}")
        try:
            code, out, err = await _exec([binary, "version", "--format", "{{.Server.Version}}"], self.timeout)
        except OSError as exc:
            return DockerStatus(False, False, self.image, error=f"no se pudo ejecutar docker: {explain_os_error(exc)}")
        if code != 0 or not out.strip():
            reason = (err.strip().splitlines() or ["el demonio de Docker no responde"])[-1][:300]
            return DockerStatus(False, False, self.image, error=f"Docker no responde: {reason}")
        version = out.strip()
        code, image_id, err = await _exec([binary, "image", "inspect", "--format", "{{.Id}}", self.image], self.timeout)
        if code != 0:
            return DockerStatus(
                True,
                False,
                self.image,
                version,
                error=f"la imagen {self.image} no existe (docker build -t {self.image} .)",
            )
        return DockerStatus(True, True, self.image, version, image_id=image_id.strip() or None)


_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def _no_constant(name: str) -> Any:
    raise ValueError(name)


class DockerRunner(Runner):
    """Each job in its own container: no network, limited CPU, memory and processes."""

    name = "docker"

    def __init__(
        self, probe: DockerProbe, *, cpus: float = 1.0, memory: str = "1g", pids: int = 256, worker_id: str = "worker"
    ) -> None:
        self.probe = probe
        self.cpus = cpus
        self.memory = memory
        self.pids = pids
        self.worker_id = worker_id
        self._running: dict[str, str] = {}  # container name -> task id

    @property
    def image(self) -> str:
        return self.probe.image

    def container_name(self, job: Job) -> str:
        """A name Docker accepts ([a-zA-Z0-9][a-zA-Z0-9_.-]*) whatever the task_id holds (any
        printable text): other characters become '_'; the random suffix keeps names unique.
        The exact id is in the label `partisim.task_id`."""
        safe = _UNSAFE_NAME.sub("_", job.task_id)[:80]
        return f"partisim-{safe}-{secrets.token_hex(3)}"

    def cpus_for(self, job: Job) -> float:
        """``--cpus`` of a job: one slot's CPUs per thread, at most this machine's
        processors (Docker refuses more), never less than one slot's."""
        return max(self.cpus, min(self.cpus * job.threads, float(os.cpu_count() or 1)))

    def command(self, job: Job, container: str) -> list[str]:
        """The `docker run` argv for a job (also what the tests inspect). A job of k
        threads gets k times the CPUs of one slot (``--cpus``)."""
        argv = [
            self.probe.docker_bin,
            "run",
            "--rm",
            "--network",
            "none",
            "--name",
            container,
            "--label",
            f"partisim.task_id={job.task_id}",
            "--label",
            f"partisim.worker_id={self.worker_id}",
            "--cpus",
            f"{self.cpus_for(job):g}",
            "--memory",
            self.memory,
            "--memory-swap",
            self.memory,
            "--pids-limit",
            str(self.pids),
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            "--entrypoint",
            "partisim",
            self.image,
            "run",
            "--engine",
            job.engine,
            "--json",
        ]
        if job.threads > 1:  # only then: an image of an older partisim knows no --threads
            argv += ["--threads", str(job.threads)]
        values = job.params.model_dump()
        for name, (option, _) in RUN_OPTIONS.items():  # the run command's own option names
            argv += [option, repr(values[name])]
        return argv

    async def ensure_ready(self) -> None:
        last = self.probe.last
        # Re-probe at once after a failure, so Docker coming back is noticed.
        status = await self.probe.check(max_age=0.0 if last is None or not last.image_available else None)
        if not status.available:
            raise WorkerUnavailable(f"Docker no está disponible en este worker: {status.error}", 503)
        if not status.image_available:
            raise WorkerUnavailable(
                f"la imagen {self.image} no está en este worker; constrúyala con 'docker build -t {self.image} .'", 503
            )

    async def _remove(self, container: str) -> None:
        try:
            await _exec([self.probe.docker_bin, "rm", "-f", container], 30)
        except OSError:
            pass

    async def run(self, job: Job, on_started: OnStarted | None = None) -> dict[str, Any]:
        await self.ensure_ready()
        container = self.container_name(job)
        argv = self.command(job, container)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL
            )
        except OSError as exc:
            raise WorkerUnavailable(f"no se pudo ejecutar docker: {explain_os_error(exc)}", 503) from None
        self._running[container] = job.task_id
        if on_started:
            on_started({"container": container})
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout=job.timeout)
        except (TimeoutError, asyncio.TimeoutError):
            await self._stop(proc, container)
            raise TaskTimedOut(
                f"la tarea superó su tiempo límite de {job.timeout:g} s; el contenedor {container} se eliminó"
            ) from None
        except asyncio.CancelledError:
            await asyncio.shield(self._stop(proc, container))
            raise
        finally:
            self._running.pop(container, None)
        return self._parse(proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace"))

    async def _stop(self, proc: asyncio.subprocess.Process, container: str) -> None:
        await self._remove(container)
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
            # Killed between the daemon's create and start, the container never runs, so
            # --rm never removes it: remove it again now that the client is gone.
            await self._remove(container)

    def _parse(self, code: int, out: str, err: str) -> dict[str, Any]:
        reason = (err.strip().splitlines() or [""])[-1][:300]
        if code == 125:  # docker itself could not run the container
            self.probe.invalidate()
            raise WorkerUnavailable(f"Docker no pudo iniciar el contenedor: {reason}", 503)
        if code == 137:
            raise WorkerFailed(f"el contenedor se detuvo (SIGKILL; ¿sin memoria? límite {self.memory})", 500)
        if code == 2 and "--threads" in err:  # argparse: an image older than threads
            raise WorkerFailed(
                f"la imagen {self.image} no conoce --threads (es de una versión anterior de "
                "partisim): reconstrúyala con 'partisim images build' para ejecutar tareas de "
                "varios hilos",
                500,
            )
        if code != 0:
            raise WorkerFailed(f"la simulación en el contenedor terminó con código {code}: {reason}", 500)
        for line in reversed(out.strip().splitlines()):
            if line.startswith("{"):
                try:
                    data = json.loads(line, parse_constant=_no_constant)  # strict: no NaN/Infinity
                except ValueError:
                    break
                if isinstance(data, dict) and "checksum" in data:
                    return data
        raise WorkerFailed("el contenedor no devolvió un resultado JSON válido", 500)

    async def close(self) -> None:
        await asyncio.gather(*(self._remove(name) for name in list(self._running)))


# --------------------------------------------------------------------------- selection


async def select_runner(
    kind: str,
    probe: DockerProbe,
    *,
    capacity: int,
    task_memory_mb: int | None = None,
    docker_cpus: float = 1.0,
    docker_memory: str = "1g",
    docker_pids: int = 256,
    worker_id: str = "worker",
) -> tuple[Runner, str | None]:
    """The runner for `--runner auto|process|docker`, and a note when auto fell back."""

    def docker() -> DockerRunner:
        return DockerRunner(probe, cpus=docker_cpus, memory=docker_memory, pids=docker_pids, worker_id=worker_id)

    if kind == "docker":
        return docker(), None
    if kind == "auto":
        status = await probe.check(max_age=0.0)
        if status.available and status.image_available:
            return docker(), "auto: Docker y la imagen están disponibles"
        note = f"auto: {status.error}; se usa el runner process"
        return ProcessRunner(capacity, task_memory_mb=task_memory_mb), note
    return ProcessRunner(capacity, task_memory_mb=task_memory_mb), None
