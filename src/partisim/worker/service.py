"""The worker as one object: identity, runner, task manager and metrics, with its life cycle.

`WorkerService.start()` probes Docker, picks and warms the runner and logs the
startup lines; `begin_shutdown()` (on SIGTERM) stops admitting tasks;
`stop()` lets running tasks finish until the grace deadline, then kills them.
The HTTP layer (`app.py`) only calls this object.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import logging
import os
import time
from typing import Any

from partisim import __version__
from partisim.fleet import Identity
from partisim.protocol import BATCH_MAX, SOFTWARE, HealthReport, PingReply, WorkerStatus
from partisim.sim import ENGINES, MODEL_VERSION, engine_threads, get_engine
from partisim.sim.engines import engine_build
from partisim.sim.environment import MachineEnvironment, host_id, machine_facts
from partisim.worker.metrics import Metrics, WorkerGauges
from partisim.worker.runners import DockerProbe, Runner, select_runner
from partisim.worker.settings import WorkerSettings, open_listener_warning
from partisim.worker.tasks import FINAL_STATES, TaskManager, TaskRecord, iso

__all__ = ["WorkerService", "available_engines", "threads_per_engine"]

log = logging.getLogger("partisim.worker")


def available_engines() -> list[str]:
    """Engines that import on this machine (cython needs the compiled extension)."""
    found = []
    for name in ENGINES:
        try:
            get_engine(name)
        except ImportError:
            continue
        found.append(name)
    return found


def threads_per_engine(engines: list[str], capacity: int) -> dict[str, int]:
    """The most threads one task of each engine can use here: its threads on this
    machine's cores (1 for python and numpy, and for cython built without OpenMP),
    at most `capacity` (a thread takes a slot)."""
    return {name: max(1, min(capacity, engine_threads(name, capacity))) for name in engines}


def openmp_available() -> bool:
    """Whether the cython engine here was built with OpenMP."""
    try:
        cython = importlib.import_module("partisim.sim.engines._cython")
    except ImportError:
        return False
    return bool(cython.openmp_available())


class WorkerService:
    def __init__(self, settings: WorkerSettings, identity: Identity, port: int) -> None:
        self.settings = settings
        self.identity = identity
        self.port = port
        self.probe = DockerProbe(settings.docker_bin, settings.docker_image)
        self.metrics = Metrics(FINAL_STATES, identity.worker_id)
        self.metrics.read_gauges_with(self._gauges)
        self.runner: Runner | None = None
        self.runner_note: str | None = None
        self.manager: TaskManager | None = None
        self.engines: list[str] = []
        self.engine_threads: dict[str, int] = {}
        self.openmp = False
        self.machine: MachineEnvironment | None = None
        self.started_at = time.time()
        self._started_mono = time.monotonic()
        self.shutdown_deadline: float | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    @property
    def worker_id(self) -> str:
        return self.identity.worker_id

    @property
    def address(self) -> str:
        host = self.identity.address
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.settings.scheme}://{self.address}"

    @property
    def max_threads(self) -> int:
        """Most threads one task can use here (any engine)."""
        return max(self.engine_threads.values(), default=1)

    @property
    def uptime_s(self) -> float:
        return time.monotonic() - self._started_mono

    def tasks(self) -> TaskManager:
        if self.manager is None:
            raise RuntimeError("worker not started")
        return self.manager

    def _on_finished(self, rec: TaskRecord) -> None:
        self.metrics.task_finished(rec.status, rec.execution_time)

    # -- life cycle --

    async def start(self) -> None:
        s = self.settings
        self.loop = asyncio.get_running_loop()
        self.engines = available_engines()
        self.engine_threads = threads_per_engine(self.engines, s.capacity)
        self.openmp = openmp_available()
        self.runner, self.runner_note = await select_runner(
            s.runner,
            self.probe,
            capacity=s.capacity,
            task_memory_mb=s.task_memory_mb,
            docker_cpus=s.docker_cpus,
            docker_memory=s.docker_memory,
            docker_pids=s.docker_pids,
            worker_id=self.worker_id,
        )
        # Docker's answer is needed now only for `auto`; otherwise probe while the pool warms up.
        await asyncio.gather(self.runner.start(), self.probe.check())
        docker = await self.probe.check()
        in_docker = self.runner.name == "docker"
        self.machine = machine_facts(
            partisim=__version__,
            model=MODEL_VERSION,
            # in Docker the image's engine runs; its id names that build
            engine_build=None if in_docker else engine_build(),
            runner=self.runner.name,
            docker_image=docker.image if in_docker else None,
            docker_image_id=docker.image_id if in_docker else None,
        )
        self.manager = TaskManager(
            self.runner,
            worker_id=self.worker_id,
            capacity=s.capacity,
            queue_size=s.effective_queue_size,
            retain=s.retain,
            replay_window=s.replay_window * 60.0,
            engine_threads=self.engine_threads,
            on_finished=self._on_finished,
            machine=self.machine,
        )
        source = {
            "argumento": "--worker-id/WORKER_ID",
            "config": f"{self.identity.config_path}",
            "dirección": "su dirección IP",
        }[self.identity.source]
        log.info("Worker %s (partisim %s) iniciado; pid %d", self.worker_id, __version__, os.getpid())
        log.info("Identidad: %s (según %s)", self.worker_id, source)
        log.info("Direcciones: %s", ", ".join(f"{s.scheme}://{a}:{self.port}" for a in self.identity.addresses))
        log.info("Runner: %s%s", self.runner.name, f" ({self.runner_note})" if self.runner_note else "")
        log.info(
            "Docker: %s; imagen %s: %s",
            f"disponible (versión {docker.version})" if docker.available else f"no disponible ({docker.error})",
            docker.image,
            "presente" if docker.image_available else "no encontrada",
        )
        log.info(
            "Capacidad: %d tareas simultáneas, cola de %d; tiempo límite máximo %g s",
            s.capacity,
            s.effective_queue_size,
            s.max_timeout,
        )
        log.info("Motores: %s", ", ".join(self.engines) or "ninguno")
        log.info(
            "Hilos por tarea: hasta %d (%s); cada hilo ocupa una plaza de la capacidad",
            self.max_threads,
            "OpenMP disponible" if self.openmp else "sin OpenMP: un hilo",
        )
        log.info(
            "Límites por tarea: max_particles=%d, max_steps=%d, max_work=%d, max_body_bytes=%d",
            s.limits.max_particles,
            s.limits.max_steps,
            s.limits.max_work,
            s.limits.max_body_bytes,
        )
        log.info("Autenticación: %s", "token Bearer requerido (salvo /ping y /health)" if s.token else "desactivada")
        log.info("TLS: %s", f"activado (certificado {s.tls_cert})" if s.tls_cert else "desactivado (http)")
        log.info(
            "Conexiones: como máximo %d abiertas; %g s para recibir cada petición", s.max_connections, s.request_timeout
        )
        if open_listener_warning(s):  # said at start by run_worker; repeated where the summary is read
            log.warning("AVISO: sin token y escuchando en %s: vea el aviso del inicio", s.host)
        log.info("Escuchando en %s", self.url)  # brackets an IPv6 address; helpers/workers.py reads this line

    def begin_shutdown(self) -> None:
        """SIGTERM: refuse new tasks from now on; running ones get the grace period."""
        if self.shutdown_deadline is None:
            self.shutdown_deadline = time.monotonic() + self.settings.grace
            log.info(
                "Señal de parada recibida: no se aceptan tareas nuevas; las tareas en curso tienen %g s",
                self.settings.grace,
            )
        elif self.shutdown_deadline > time.monotonic():  # a second signal: do not wait any longer
            self.shutdown_deadline = time.monotonic()
            log.info("Segunda señal de parada: se detienen ya las tareas en curso")
        if self.manager is not None:
            self.manager.begin_shutdown()

    def signal_shutdown(self) -> None:
        """`begin_shutdown` from a signal handler (thread-safe)."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.begin_shutdown)

    async def stop(self) -> None:
        if self.shutdown_deadline is None:
            self.shutdown_deadline = time.monotonic() + self.settings.grace
        if self.manager is not None:
            await self.manager.shutdown(lambda: self.shutdown_deadline or 0.0)
        elif self.runner is not None:
            await self.runner.close()
        log.info("Worker %s detenido", self.worker_id)

    # -- views for the HTTP layer --

    def ping(self, *, full: bool = True) -> PingReply:
        """`full=False` (an anonymous caller while a token is set): liveness only."""
        if not full:
            return PingReply(status="active", timestamp=iso(), message="Worker activo")
        return PingReply(
            status="active", worker_id=self.worker_id, timestamp=iso(), message=f"Worker {self.worker_id} activo"
        )

    async def status(self) -> WorkerStatus:
        s = self.settings
        m = self.tasks()
        docker = await self.probe.current()
        done = self.metrics.tasks  # finished tasks by status, counted once (also for /metrics)
        try:
            load = [round(x, 2) for x in os.getloadavg()]
        except (AttributeError, OSError):
            load = None
        return WorkerStatus(
            worker_id=self.worker_id,
            software=SOFTWARE,
            address=self.address,
            addresses=[f"{a}:{self.port}" for a in self.identity.addresses],
            version=__version__,
            status="busy" if m.slots_used >= m.capacity else "ready",
            accepting=not m.stopping,
            engines=list(self.engines),
            runner=self.runner.name if self.runner else None,
            runner_requested=s.runner,
            runner_note=self.runner_note,
            **docker.as_dict(),
            capacity=m.capacity,
            running=m.running,
            slots_used=m.slots_used,
            queued=m.queued,
            queue_size=m.queue_size,
            completed=done["success"],
            # a task stopped at the deadline its client set (as `partisim check` does on
            # purpose) is a timeout, not a failure of this worker
            failed=done["failed"],
            timeouts=done["timeout"],
            cancelled=done["cancelled"],
            uptime_s=round(self.uptime_s, 3),
            cpu_count=os.cpu_count(),
            max_threads=self.max_threads,
            engine_threads=dict(self.engine_threads),
            batch_max=BATCH_MAX,
            openmp=self.openmp,
            environment=self.machine,
            host_id=host_id(),
            load_avg=load,
            max_timeout=s.max_timeout,
            limits=dataclasses.asdict(s.limits),
            auth_required=bool(s.token),
            tls=bool(s.tls_cert),
            request_timeout=s.request_timeout,
            max_connections=s.max_connections,
            timestamp=iso(),
        )

    async def health(self, *, full: bool = True) -> HealthReport:
        """`full=False` (an anonymous caller while a token is set): the status only."""
        m = self.tasks()
        checks: dict[str, Any] = {}
        runner_ok, detail = True, f"runner {self.runner.name if self.runner else '?'} listo"
        try:
            if self.runner is None:
                raise RuntimeError("sin runner")
            await self.runner.ensure_ready()
        except Exception as exc:  # any reason the runner cannot take work is "unhealthy"
            runner_ok, detail = False, str(exc)
        checks["runner"] = {"ok": runner_ok, "detail": detail}
        checks["accepting"] = {"ok": not m.stopping, "detail": "se está deteniendo" if m.stopping else "acepta tareas"}
        docker = await self.probe.current()
        needs_docker = self.runner is not None and self.runner.name == "docker"
        checks["docker"] = {
            "ok": docker.available and docker.image_available,
            "required": needs_docker,
            **docker.as_dict(),
        }
        checks["capacity"] = {
            "ok": True,
            "running": m.running,
            "slots_used": m.slots_used,
            "queued": m.queued,
            "capacity": m.capacity,
        }
        healthy = runner_ok and not m.stopping
        if not full:
            return HealthReport(status="healthy" if healthy else "unhealthy", timestamp=iso())
        return HealthReport(
            status="healthy" if healthy else "unhealthy", worker_id=self.worker_id, checks=checks, timestamp=iso()
        )

    def _gauges(self) -> WorkerGauges:
        m = self.tasks()
        return WorkerGauges(
            version=__version__,
            runner=self.runner.name if self.runner else "?",
            running=m.running,
            queued=m.queued,
            capacity=m.capacity,
            uptime_s=self.uptime_s,
        )

    def render_metrics(self, accept: str | None = None) -> tuple[bytes, str]:
        """The /metrics body and its content type (Prometheus text, or OpenMetrics when asked)."""
        return self.metrics.render(accept)
