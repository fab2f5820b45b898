"""The worker as one object: identity, runner, task manager and metrics, with its life cycle.

`WorkerService.start()` probes Docker, picks and warms the runner and logs the
startup lines; `begin_shutdown()` (on SIGTERM) stops admitting tasks;
`stop()` lets running tasks finish until the grace deadline, then kills them.
The HTTP layer (`app.py`) only calls this object.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from typing import Any

from partisim import __version__
from partisim.fleet import Identity
from partisim.protocol import SOFTWARE, HealthReport, PingReply, WorkerStatus
from partisim.sim import ENGINES, get_engine
from partisim.worker.metrics import Metrics
from partisim.worker.runners import DockerProbe, Runner, select_runner
from partisim.worker.settings import WorkerSettings
from partisim.worker.tasks import FINAL_STATES, TaskManager, TaskRecord, iso

__all__ = ["WorkerService", "available_engines"]

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


class WorkerService:
    def __init__(self, settings: WorkerSettings, identity: Identity, port: int) -> None:
        self.settings = settings
        self.identity = identity
        self.port = port
        self.probe = DockerProbe(settings.docker_bin, settings.docker_image)
        self.metrics = Metrics(FINAL_STATES)
        self.runner: Runner | None = None
        self.runner_note: str | None = None
        self.manager: TaskManager | None = None
        self.engines: list[str] = []
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
        return f"http://{self.address}"

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
        self.runner, self.runner_note = await select_runner(
            s.runner, self.probe, capacity=s.capacity, task_memory_mb=s.task_memory_mb,
            docker_cpus=s.docker_cpus, docker_memory=s.docker_memory, docker_pids=s.docker_pids,
            worker_id=self.worker_id)
        # Docker's answer is needed now only for `auto`; otherwise probe while the pool warms up.
        await asyncio.gather(self.runner.start(), self.probe.check())
        self.manager = TaskManager(self.runner, worker_id=self.worker_id, capacity=s.capacity,
                                   queue_size=s.effective_queue_size, retain=s.retain,
                                   on_finished=self._on_finished)
        docker = await self.probe.check()
        source = {"argumento": "--worker-id/WORKER_ID", "config": f"{self.identity.config_path}",
                  "dirección": "su dirección IP"}[self.identity.source]
        log.info("Worker %s (partisim %s) iniciado; pid %d", self.worker_id, __version__, os.getpid())
        log.info("Identidad: %s (según %s)", self.worker_id, source)
        log.info("Direcciones: %s", ", ".join(f"http://{a}:{self.port}" for a in self.identity.addresses))
        log.info("Runner: %s%s", self.runner.name, f" ({self.runner_note})" if self.runner_note else "")
        log.info("Docker: %s; imagen %s: %s",
                 f"disponible (versión {docker.version})" if docker.available else f"no disponible ({docker.error})",
                 docker.image, "presente" if docker.image_available else "no encontrada")
        log.info("Capacidad: %d tareas simultáneas, cola de %d; tiempo límite máximo %g s",
                 s.capacity, s.effective_queue_size, s.max_timeout)
        log.info("Motores: %s", ", ".join(self.engines) or "ninguno")
        log.info("Límites por tarea: max_particles=%d, max_steps=%d, max_work=%d, max_body_bytes=%d",
                 s.limits.max_particles, s.limits.max_steps, s.limits.max_work, s.limits.max_body_bytes)
        log.info("Autenticación: %s", "token Bearer requerido (salvo /ping y /health)" if s.token else "desactivada")
        log.info("Escuchando en %s", self.url)  # brackets an IPv6 address; helpers/workers.py reads this line

    def begin_shutdown(self) -> None:
        """SIGTERM: refuse new tasks from now on; running ones get the grace period."""
        if self.shutdown_deadline is None:
            self.shutdown_deadline = time.monotonic() + self.settings.grace
            log.info("Señal de parada recibida: no se aceptan tareas nuevas; las tareas en curso tienen %g s",
                     self.settings.grace)
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

    def ping(self) -> PingReply:
        return PingReply(status="active", worker_id=self.worker_id, timestamp=iso(),
                         message=f"Worker {self.worker_id} activo")

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
            status="busy" if m.running >= m.capacity else "ready",
            accepting=not m.stopping,
            engines=list(self.engines),
            runner=self.runner.name if self.runner else None,
            runner_requested=s.runner,
            runner_note=self.runner_note,
            **docker.as_dict(),
            capacity=m.capacity,
            running=m.running,
            queued=m.queued,
            queue_size=m.queue_size,
            completed=done["success"],
            failed=done["failed"] + done["timeout"],
            timeouts=done["timeout"],
            cancelled=done["cancelled"],
            uptime_s=round(self.uptime_s, 3),
            cpu_count=os.cpu_count(),
            load_avg=load,
            max_timeout=s.max_timeout,
            limits=dataclasses.asdict(s.limits),
            auth_required=bool(s.token),
            timestamp=iso(),
        )

    async def health(self) -> HealthReport:
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
        checks["accepting"] = {"ok": not m.stopping,
                               "detail": "se está deteniendo" if m.stopping else "acepta tareas"}
        docker = await self.probe.current()
        needs_docker = self.runner is not None and self.runner.name == "docker"
        checks["docker"] = {"ok": docker.available and docker.image_available, "required": needs_docker,
                            **docker.as_dict()}
        checks["capacity"] = {"ok": True, "running": m.running, "queued": m.queued, "capacity": m.capacity}
        healthy = runner_ok and not m.stopping
        return HealthReport(status="healthy" if healthy else "unhealthy", worker_id=self.worker_id,
                            checks=checks, timestamp=iso())

    def render_metrics(self) -> str:
        m = self.tasks()
        return self.metrics.render(worker_id=self.worker_id, version=__version__,
                                   runner=self.runner.name if self.runner else "?", running=m.running,
                                   queued=m.queued, capacity=m.capacity, uptime_s=self.uptime_s)
