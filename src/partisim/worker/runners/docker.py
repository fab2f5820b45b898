"""`DockerRunner`: each job in its own container (`docker run --rm --network none` with
CPU, memory and pids limits), reading the JSON that `partisim run --json` prints in it;
`DockerProbe`: is Docker usable here, and is the image there?
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypedDict

from partisim.errors import TaskTimedOut, WorkerFailed, WorkerUnavailable, explain_os_error
from partisim.images import SIM_IMAGE
from partisim.sim import SimResult
from partisim.sim.options import OPTIONS as RUN_OPTIONS
from partisim.worker.runners.base import Job, OnStarted, Runner

__all__ = ["DockerRunner", "DockerProbe", "DockerStatus"]

_RESULT_FIELDS = [f.name for f in dataclasses.fields(SimResult)]
#: what an image of an older partisim may leave out (the fields with a default)
_OPTIONAL_FIELDS = {f.name for f in dataclasses.fields(SimResult) if f.default is not dataclasses.MISSING}


class DockerFields(TypedDict):
    """What a worker's status and health say of Docker (fields of `WorkerStatus`)."""

    docker_available: bool
    image_available: bool
    docker_image: str
    docker_version: str | None
    docker_error: str | None


@dataclass(frozen=True)
class DockerStatus:
    available: bool
    image_available: bool
    image: str
    version: str | None = None
    error: str | None = None
    checked_at: float = field(default_factory=time.monotonic)
    image_id: str | None = None  # the image's content id (``docker image inspect``)

    def as_dict(self) -> DockerFields:
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


def _no_constant(name: str) -> NoReturn:
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

    async def run(self, job: Job, on_started: OnStarted | None = None) -> SimResult:
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

    def _parse(self, code: int, out: str, err: str) -> SimResult:
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
                    return _sim_result(data)
        raise WorkerFailed("el contenedor no devolvió un resultado JSON válido", 500)

    async def close(self) -> None:
        await asyncio.gather(*(self._remove(name) for name in list(self._running)))


def _sim_result(data: dict[str, Any]) -> SimResult:
    """The `SimResult` that `partisim run --json` printed in the container."""
    missing = [name for name in _RESULT_FIELDS if name not in data and name not in _OPTIONAL_FIELDS]
    if missing:
        raise WorkerFailed(f"el contenedor devolvió un resultado incompleto (falta {', '.join(missing)})", 500)
    try:
        return SimResult(**{name: data[name] for name in _RESULT_FIELDS if name in data})
    except TypeError as exc:
        raise WorkerFailed(f"el contenedor devolvió un resultado que no se entiende: {exc}", 500) from None
