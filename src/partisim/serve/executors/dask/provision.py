"""Provisioning for ``partisim serve --dask``: the cluster and who is in it.

- The cluster: ``local:N`` starts (and stops) a LocalCluster of N single-threaded worker
  processes on 127.0.0.1; ``slurm`` / ``pbs`` start a dask-jobqueue cluster (adaptive
  between the configured minimum and maximum of jobs); ``tcp://…`` is an existing
  scheduler.
- The connection: serve's asynchronous Dask client, tried again every `RECONNECT_S`
  while the scheduler cannot be reached.
- Members: the cluster's workers (asked every poll): threads, memory, tasks executing and
  a link to Dask's own dashboard.
- Version guard: every worker, when first seen, must import partisim at serve's version
  and model version (`remote.environment`). One that cannot is named in a Spanish error
  (log and /api/workers) and is not used.

Loopback: when ``dask.jobqueue.scheduler_host`` is a loopback address, the scheduler's
dashboard and every job's Dask worker bind and announce that address only (Dask's own
choice of address is the machine's outward interface).

Attempt tracking (what runs where, and its outcome) is `cluster.DaskCluster`'s.
"""

from __future__ import annotations

import ipaddress
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from partisim.errors import ConfigError
from partisim.fleet import DaskKind, DaskSettings, DaskTarget, JobqueueSettings
from partisim.protocol import MemberView
from partisim.serve.executors.dask.remote import WorkerEnvironment, environment, expected

__all__ = [
    "DaskProvision",
    "Member",
    "require_dask",
    "jobqueue_cluster",
    "job_script",
    "RECONNECT_S",
    "INSTALL",
    "JOB_NAME",
]

log = logging.getLogger(__name__)

#: how often serve tries again to reach a scheduler it could not connect to
RECONNECT_S = 10.0

#: the name of every batch job (what squeue shows)
JOB_NAME = "partisim-dask"

INSTALL = "pip install 'partisim[dask]'"


def require_dask(kind: DaskKind) -> None:
    """ConfigError, in Spanish and saying what to install, when Dask is missing."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"--dask necesita Dask (dask y distributed), que no está instalado en este entorno de Python: "
            f"instálelo con  {INSTALL}  (o  pip install dask distributed)"
        ) from None
    if kind in ("slurm", "pbs"):
        try:
            import dask_jobqueue  # noqa: F401
        except ImportError:
            raise ConfigError(
                f"--dask {kind} necesita dask-jobqueue, que no está instalado en este entorno de Python: "
                f"instálelo con  {INSTALL}  (o  pip install dask-jobqueue)"
            ) from None


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def job_script(kind: DaskKind, settings: JobqueueSettings) -> str:
    """The batch script ``--dask slurm|pbs`` submits (to check it before serving): the
    same options as serve's cluster, so only the scheduler's port and the job's worker
    name differ from what a job really carries."""
    cluster = jobqueue_cluster(kind, settings)
    try:
        return str(cluster.job_script())
    finally:
        cluster.close()


def log_directory(settings: JobqueueSettings) -> Path:
    """Where the jobs write their output (``settings.log_directory``, ``~`` expanded)."""
    return Path(settings.log_directory).expanduser()


def jobqueue_cluster(kind: DaskKind, settings: JobqueueSettings, **extra: Any) -> Any:
    """The dask-jobqueue cluster (SLURMCluster or PBSCluster) for ``settings``; its
    workers run this same Python (or ``settings.python``), so they import this partisim.
    Job output goes to `log_directory`, never to serve's working folder."""
    require_dask(kind)
    cls: Any
    if kind == "slurm":
        from dask_jobqueue.slurm import SLURMCluster as cls
    else:
        from dask_jobqueue.pbs import PBSCluster as cls
    scheduler_options: dict[str, Any] = dict(extra.pop("scheduler_options", {}))
    worker_args: list[str] = []
    host = settings.scheduler_host
    if host:
        scheduler_options.setdefault("host", host)
    if _loopback(host):
        # Dask's own pick would be the machine's other interface, and its dashboards 0.0.0.0
        scheduler_options.setdefault("dashboard_address", f"{host}:0")
        worker_args += ["--host", str(host), "--dashboard-address", f"{host}:0"]
    logs = log_directory(settings)
    try:
        logs.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"dask.jobqueue.log_directory: no se puede crear {logs}: {exc.strerror or exc}") from None
    return cls(
        queue=settings.queue,
        account=settings.account,
        cores=settings.cores,
        processes=settings.processes,
        memory=settings.memory,
        walltime=settings.walltime,
        interface=settings.interface,
        python=settings.python or sys.executable,
        job_script_prologue=list(settings.prologue),
        job_extra_directives=list(settings.directives),
        worker_extra_args=worker_args,
        log_directory=str(logs),
        job_name=JOB_NAME,
        scheduler_options=scheduler_options,
        **extra,
    )


@dataclass
class Member:
    """A Dask worker as serve sees it."""

    address: str
    since: float
    name: str = ""
    threads: int = 1
    memory: int | None = None
    executing: int = 0
    last_seen: float | None = None
    usable: bool | None = None  # None: the version guard has not answered yet
    error: str | None = None


def _host_port(address: str) -> str:
    return address.split("://", 1)[-1]


class DaskProvision:
    """The cluster serve started (if any), its client, and its members."""

    def __init__(self, target: DaskTarget, settings: DaskSettings, wake: Callable[[], None]) -> None:
        self.target = target
        self.settings = settings
        self.wake = wake  # the members changed: a scheduling round may place more
        self.scheduler_address = target.address if target.kind == "scheduler" else ""
        self.dashboard: str | None = None
        self.cluster: Any = None
        self.client: Any = None
        self.members: dict[str, Member] = {}
        self.connected = False
        self.checked_at: float | None = None
        self.poll_error: str | None = None
        self.connect_at = 0.0

    @property
    def adaptive(self) -> bool:
        return self.target.kind in ("slurm", "pbs")

    async def start_cluster(self) -> None:
        """Start local:N or the jobqueue cluster; a failure is logged (serve goes on
        answering, with no worker)."""
        try:
            self.cluster = await self._start_cluster()
        except ConfigError as exc:
            log.error("%s", exc)
            return
        if self.cluster is not None:
            self.scheduler_address = str(self.cluster.scheduler_address)

    async def _start_cluster(self) -> Any:
        if self.target.kind == "local":
            import distributed

            local: Any = distributed.LocalCluster
            try:
                return await local(
                    n_workers=self.target.workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address="127.0.0.1:0",
                    asynchronous=True,
                    silence_logs=logging.ERROR,
                )
            except Exception as exc:
                raise ConfigError(f"no se pudo arrancar el clúster Dask local ({self.target.address}): {exc}") from None
        if self.adaptive:
            try:
                return await jobqueue_cluster(self.target.kind, self.settings.jobqueue, asynchronous=True)
            except ConfigError:
                raise
            except Exception as exc:
                raise ConfigError(
                    f"no se pudo preparar el clúster {self.target.kind.upper()} de dask-jobqueue: {exc}"
                ) from None
        return None

    def reconnect_due(self) -> bool:
        return bool(self.scheduler_address) and time.monotonic() - self.connect_at >= RECONNECT_S

    async def connect(self, topics: dict[str, Callable[[Any], None]]) -> bool:
        """Connect serve's client and subscribe ``topics``; False (logged) if the
        scheduler cannot be reached."""
        import asyncio

        import distributed

        client_class: Any = distributed.Client  # partly untyped: used as Any
        wait = self.settings.connect_timeout
        self.connect_at = time.monotonic()
        client = client_class(
            self.scheduler_address, asynchronous=True, set_as_default=False, name="partisim-serve", timeout=wait
        )

        async def started() -> None:
            await client

        try:
            # wait_for as well: a peer that accepts the connection but never answers
            # (not a Dask scheduler) would keep the client waiting for ever
            await asyncio.wait_for(started(), timeout=wait + 5)
        except (OSError, TimeoutError, asyncio.TimeoutError) as exc:
            try:
                await client.close()
            except Exception:  # it never connected: nothing to close properly
                pass
            reason = str(exc) or f"sin respuesta en {wait:g} s (¿es un planificador Dask?)"
            message = (
                f"no se pudo conectar con el planificador Dask en {self.scheduler_address}: {reason}; "
                f"se reintentará cada {RECONNECT_S:g} s"
            )
            if message != self.poll_error:
                log.error("%s", message)
            self.poll_error = message
            return False
        self.client = client
        for topic, handler in topics.items():
            client.subscribe_topic(topic, handler)
        if self.adaptive:
            jq = self.settings.jobqueue
            self.cluster.adapt(minimum_jobs=jq.minimum_jobs, maximum_jobs=jq.maximum_jobs)
        await self.refresh()
        where = "" if self.target.kind == "scheduler" else f", planificador {self.scheduler_address}"
        log.info("Dask: %s%s%s", self.target.label, where, f", panel {self.dashboard}" if self.dashboard else "")
        return True

    async def close(self, topics: list[str]) -> None:
        if self.client is not None:
            # Closing the client releases its futures: the workers mark the tasks
            # cancelled and kill their computations.
            try:
                for topic in topics:
                    self.client.unsubscribe_topic(topic)
                await self.client.close()
            except Exception as exc:
                log.warning("no se pudo cerrar el cliente Dask: %s", exc)
            self.client = None
        if self.cluster is not None:
            try:
                await self.cluster.close()
            except Exception as exc:  # closing must not hide why serve stops
                log.warning("no se pudo cerrar el clúster Dask: %s", exc)
            self.cluster = None

    # -- members --------------------------------------------------------------------

    async def _identity(self) -> dict[str, Any]:
        try:
            info: dict[str, Any] = await self.client.scheduler.identity(n_workers=-1)
        except TypeError:  # an older scheduler: every worker is listed anyway
            info = await self.client.scheduler.identity()
        return info

    async def refresh(self) -> None:
        """Ask the scheduler for its workers; run the version guard on new ones."""
        try:
            info = await self._identity()
        except Exception as exc:
            message = f"sin respuesta del planificador Dask {self.scheduler_address}: {exc}"
            if self.poll_error != message:
                log.warning("%s", message)
            self.poll_error, self.connected = message, False
            return
        if self.poll_error is not None:
            log.info("planificador Dask %s: conexión recuperada", self.scheduler_address)
        self.poll_error, self.connected = None, True
        now = time.time()
        self.checked_at = now
        self._dashboard_from(info)
        workers: dict[str, Any] = info.get("workers") or {}
        changed = False
        for address, data in workers.items():
            member = self.members.get(address)
            if member is None:
                member = self.members[address] = Member(address, since=now)
                changed = True
            member.name = str(data.get("name", ""))
            member.threads = int(data.get("nthreads") or 1)
            member.memory = int(data["memory_limit"]) if data.get("memory_limit") else None
            counts = (data.get("metrics") or {}).get("task_counts") or {}
            member.executing = int(counts.get("executing", 0)) if isinstance(counts, dict) else 0
            member.last_seen = now
        for address in [a for a in self.members if a not in workers]:
            self.forget(address)
            changed = True
        unchecked = [a for a, m in self.members.items() if m.usable is None]
        if unchecked:
            await self._guard(unchecked)
            changed = True
        if changed:
            self.wake()

    def _dashboard_from(self, info: dict[str, Any]) -> None:
        port = (info.get("services") or {}).get("dashboard")
        host = urlsplit(self.scheduler_address).hostname if "://" in self.scheduler_address else None
        if port and host:
            shown = f"[{host}]" if ":" in host else host
            self.dashboard = f"http://{shown}:{port}"

    async def _guard(self, addresses: list[str]) -> None:
        """The version guard: which of these workers import partisim as serve does."""
        try:
            answers: dict[str, Any] = await self.client.run(environment, workers=addresses, on_error="return")
        except Exception as exc:
            log.warning("no se pudo comprobar la versión de los workers Dask: %s", exc)
            return
        want_version, want_model = expected()
        for address in addresses:
            member = self.members.get(address)
            if member is None or address not in answers:
                continue  # gone meanwhile, or no answer yet: asked again on the next look
            got = answers[address]
            if isinstance(got, WorkerEnvironment) and (got.version, got.model) == (want_version, want_model):
                member.usable, member.error = True, None
                log.info(
                    "worker Dask %s listo: %d hilos, partisim %s, motores %s",
                    address,
                    member.threads,
                    got.version,
                    ", ".join(got.engines) or "ninguno",
                )
                continue
            if isinstance(got, WorkerEnvironment):
                reason = (
                    f"tiene partisim {got.version} (modelo v{got.model}) y este serve usa partisim "
                    f"{want_version} (modelo v{want_model})"
                )
                fix = f"instale partisim {want_version} en el entorno de ese worker"
            else:
                detail = str(got) if type(got) is Exception else f"{type(got).__name__}: {got}"
                reason = f"no puede importar partisim ({detail})"
                fix = f"instale partisim {want_version} ({INSTALL}) en el entorno de Python de ese worker"
            named = f"{address} ({member.name})" if member.name and member.name != address else address
            self.refuse(member, f"el worker Dask {named} {reason}: no se usará; {fix}")

    def refuse(self, member: Member, message: str) -> None:
        if member.error != message:
            log.error("%s", message)
        member.usable, member.error = False, message

    def recheck(self) -> None:
        """Ask every worker not refused again (one could not load a task)."""
        for member in self.members.values():
            if member.usable is not False:
                member.usable = None

    def forget(self, address: str) -> None:
        member = self.members.pop(address, None)
        if member is not None and member.usable:
            log.info("el worker Dask %s salió del clúster", address)

    def usable(self) -> list[Member]:
        return [m for m in self.members.values() if m.usable]

    def threads(self) -> int:
        """Threads of the usable workers (for adaptive clusters, at least what the
        maximum of jobs will bring: ask for work before the jobs exist, or adaptive
        scaling never starts them)."""
        if not self.connected:
            return 0
        threads = sum(m.threads for m in self.usable())
        if self.adaptive:
            jq = self.settings.jobqueue
            threads = max(threads, jq.maximum_jobs * jq.cores)
        return threads

    def views(self, ran: dict[str, int]) -> list[MemberView]:
        out = []
        for m in self.members.values():
            active = bool(m.usable) and self.connected
            link = f"{self.dashboard}/info/worker/{quote(m.address, safe='')}.html" if self.dashboard else None
            out.append(
                MemberView(
                    id=m.address,
                    kind="dask",
                    url=m.address,
                    address=_host_port(m.address),
                    state="active" if active else "inactive",
                    since=m.since,
                    reported_id=m.name if m.name and m.name != m.address else None,
                    last_error=m.error or (self.poll_error if not self.connected else None),
                    last_seen=m.last_seen,
                    checked_at=self.checked_at,
                    capacity=m.threads,
                    inflight=m.executing,
                    free=max(0, m.threads - m.executing) if active else 0,
                    dispatched=ran.get(m.address, 0),
                    threads=m.threads,
                    memory_bytes=m.memory,
                    dashboard_url=link,
                )
            )
        return out
