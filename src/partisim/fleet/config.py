"""config_workers.json: the workers and the orchestrator's settings, shared by the worker
and the orchestrator.

The users' format is validated once here; every command takes the result. Errors are
`ConfigError`s whose Spanish message names the file and the field.

A worker entry is ``{"id", "ip", "port"}`` (``"host"`` is accepted for ``"ip"``, as the
users' later orchestrators wrote it), plus optional fields that only the orchestrator
reads: ``capacity`` (its slot limit in serve), ``algorithms`` (the engines serve may send
there), ``tls`` (speak https to it), ``token``/``token_file`` (its bearer token). The
``orchestrator`` object may give one shared ``worker_token``/``worker_token_file`` and a
``ca_file`` to verify the workers' certificates. Token files are read only when a client
needs them (`Config.token_for`), so a worker reading the file to find its own identity
never needs the orchestrator's secrets.

"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from partisim.defaults import DEFAULT_CONFIG_PATH, DEFAULT_SERVER, default_server
from partisim.errors import ConfigError, explain_json_error, explain_os_error, explain_validation

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_SERVER",
    "default_server",
    "read_token_file",
    "client_token",
    "env_ca_file",
    "Config",
    "WorkerEntry",
    "OrchestratorSettings",
    "load_config",
    "parse_config",
    "DaskSettings",
    "JobqueueSettings",
    "DaskTarget",
    "DaskKind",
    "parse_dask_target",
]

log = logging.getLogger(__name__)


def read_token_file(path: str | Path, what: str = "--token-file") -> str:
    """The token in ``path`` (surrounding whitespace removed); `ConfigError` naming
    ``what`` when it cannot be read or is empty. The token itself is never shown."""
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = explain_os_error(exc) if isinstance(exc, OSError) else "no es texto UTF-8"
        raise ConfigError(f"{what}: no se puede leer {path}: {reason}") from None
    if not token:
        raise ConfigError(f"{what}: el archivo {path} está vacío")
    if any(c.isspace() for c in token) or not token.isprintable():
        raise ConfigError(f"{what}: el token de {path} no puede tener espacios ni caracteres de control")
    return token


def client_token(token_file: str | None = None) -> str | None:
    """The token a client presents to ``partisim serve``: ``--token-file``, else
    ``PARTISIM_TOKEN_FILE``, else ``PARTISIM_TOKEN``, else none."""
    if token_file:
        return read_token_file(token_file, "--token-file")
    from_env = os.environ.get("PARTISIM_TOKEN_FILE", "").strip()
    if from_env:
        return read_token_file(from_env, "PARTISIM_TOKEN_FILE")
    return os.environ.get("PARTISIM_TOKEN", "").strip() or None


def env_ca_file() -> str | None:
    """``PARTISIM_CA_FILE``: the certificate authority that signed the servers' certificates."""
    return os.environ.get("PARTISIM_CA_FILE", "").strip() or None


#: engine names a worker entry's "algorithms" may hold (the users' script names too)
_ALGORITHMS = {
    "python": "python",
    "numpy": "numpy",
    "cython": "cython",
    "benchmark.py": "python",
    "benchmark_cython.py": "cython",
}


class WorkerEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    ip: str
    port: int = Field(8080, ge=1, le=65535, strict=True)
    #: https instead of http (the worker runs with --tls-cert/--tls-key)
    tls: bool = Field(False, strict=True)
    #: this worker's bearer token, written in the file or kept in a file of its own
    token: str | None = Field(None, min_length=1, max_length=4096, repr=False)
    token_file: str | None = Field(None, min_length=1, max_length=4096)
    #: slots serve uses on it (else what its /status reports)
    capacity: int | None = Field(None, ge=1, le=10_000, strict=True)
    #: engines serve may send to it (else every engine it can run)
    algorithms: tuple[str, ...] | None = None

    @model_validator(mode="before")
    @classmethod
    def _host_alias(cls, data: object) -> object:
        # the users' ETAPA-6 files say "host" where ETAPA-4 said "ip"
        if isinstance(data, dict) and "host" in data:
            data = dict(data)
            host = data.pop("host")
            if "ip" in data and data["ip"] != host:
                raise ValueError(f'"ip" ({data["ip"]!r}) y "host" ({host!r}) no coinciden; use solo uno')
            data["ip"] = host
        return data

    @field_validator("ip")
    @classmethod
    def _valid_ip(cls, v: str) -> str:
        try:
            return str(ipaddress.ip_address(v.strip()))
        except ValueError:
            raise ValueError(f"dirección IP inválida: {v!r}") from None

    @field_validator("token")
    @classmethod
    def _valid_token(cls, v: str | None) -> str | None:
        if v is not None and (any(c.isspace() for c in v) or not v.isprintable()):
            raise ValueError("el token no puede tener espacios ni caracteres de control")
        return v

    @field_validator("algorithms", mode="before")
    @classmethod
    def _valid_algorithms(cls, v: object) -> tuple[str, ...] | None:
        if v is None:
            return None
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, (list, tuple)) or not v:
            raise ValueError('debe ser una lista de motores, p. ej. ["python", "cython"]')
        engines: list[str] = []
        for name in v:
            engine = _ALGORITHMS.get(name) if isinstance(name, str) else None
            if engine is None:
                raise ValueError(f"motor desconocido {name!r}; válidos: {', '.join(_ALGORITHMS)}")
            if engine not in engines:
                engines.append(engine)
        return tuple(engines)

    @model_validator(mode="after")
    def _one_token(self) -> WorkerEntry:
        if self.token is not None and self.token_file is not None:
            raise ValueError("use token o token_file, no ambos")
        return self

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def url(self) -> str:
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"{self.scheme}://{host}:{self.port}"

    def runs(self, engine: str) -> bool:
        """Whether serve may send ``engine`` here (its ``algorithms``, if given)."""
        return self.algorithms is None or engine in self.algorithms

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"


class OrchestratorSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    timeout: float = Field(5.0, gt=0, le=3600, allow_inf_nan=False)
    retry_attempts: int = Field(3, ge=0, le=100, strict=True)
    max_concurrent_tasks: int = Field(4, ge=1, le=10_000, strict=True)
    ping_interval: float = Field(2.0, gt=0, le=3600, allow_inf_nan=False)
    failures_before_inactive: int = Field(2, ge=1, le=100, strict=True)
    #: seconds serve waits for an answer beyond a task's own timeout and ``timeout``
    answer_margin: float = Field(10.0, ge=0, le=3600, allow_inf_nan=False)
    #: one token for every worker without its own
    worker_token: str | None = Field(None, min_length=1, max_length=4096, repr=False)
    worker_token_file: str | None = Field(None, min_length=1, max_length=4096)
    #: certificate authority of the workers' (and serve's) certificates, for https
    ca_file: str | None = Field(None, min_length=1, max_length=4096)

    @model_validator(mode="after")
    def _one_token(self) -> OrchestratorSettings:
        if self.worker_token is not None and self.worker_token_file is not None:
            raise ValueError("use worker_token o worker_token_file, no ambos")
        return self


# -- the Dask section (``partisim serve --dask``) ------------------------------------------

DaskKind = Literal["scheduler", "local", "slurm", "pbs"]


@dataclass(frozen=True)
class DaskTarget:
    """Where ``serve --dask`` runs its tasks: an existing scheduler (``tcp://host:port``),
    a LocalCluster of ``workers`` single-threaded processes (``local:N``), or batch jobs
    of dask-jobqueue (``slurm``, ``pbs``)."""

    kind: DaskKind
    address: str  # the scheduler's address, or the text given (local:N, slurm, pbs)
    workers: int = 0

    @property
    def label(self) -> str:
        if self.kind == "local":
            return f"LocalCluster de {self.workers} procesos"
        if self.kind in ("slurm", "pbs"):
            return f"trabajos {self.kind.upper()} (dask-jobqueue)"
        return f"planificador Dask {self.address}"


_SCHEDULER = re.compile(r"^(?:(tcp|tls|ws|wss)://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")
MAX_LOCAL_WORKERS = 256
DASK_FORMS = "tcp://HOST:PUERTO, local:N, slurm o pbs"


def parse_dask_target(text: str) -> DaskTarget:
    """Read ``--dask ADDRESS``; ValueError with a Spanish message naming what is wrong."""
    given = text.strip()
    low = given.lower()
    if low == "slurm":
        return DaskTarget("slurm", low)
    if low == "pbs":
        return DaskTarget("pbs", low)
    if low.startswith("local:"):
        count = low.split(":", 1)[1]
        if not count.isdigit() or not 1 <= int(count) <= MAX_LOCAL_WORKERS:
            raise ValueError(
                f"local:N necesita un número de workers entre 1 y {MAX_LOCAL_WORKERS} (recibido {given!r})"
            )
        return DaskTarget("local", low, int(count))
    match = _SCHEDULER.match(given)
    if match is None:
        raise ValueError(f"dirección de Dask inválida {given!r}; use {DASK_FORMS}")
    scheme, host, port = match.group(1) or "tcp", match.group(2), int(match.group(3))
    if not 1 <= port <= 65535:
        raise ValueError(f"puerto inválido en {given!r}: debe estar entre 1 y 65535")
    return DaskTarget("scheduler", f"{scheme}://{host}:{port}")


_MEMORY = re.compile(r"^\d+(\.\d+)?\s*([kKMGTP]i?B|B)$")
_WALLTIME = re.compile(r"^(\d+-)?\d{1,4}:\d{2}(:\d{2})?$")


class JobqueueSettings(BaseModel):
    """``dask.jobqueue``: the batch jobs that ``--dask slurm|pbs`` submits; each job runs
    ``processes`` Dask workers sharing ``cores`` cores and ``memory``. Adaptive: between
    ``minimum_jobs`` and ``maximum_jobs`` jobs, as the queue asks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    queue: str | None = Field(None, min_length=1, max_length=128)
    account: str | None = Field(None, min_length=1, max_length=128)
    cores: int = Field(1, ge=1, le=4096, strict=True)
    processes: int = Field(1, ge=1, le=4096, strict=True)
    memory: str = "2GB"
    walltime: str = "01:00:00"
    minimum_jobs: int = Field(0, ge=0, le=10_000, strict=True)
    maximum_jobs: int = Field(1, ge=1, le=10_000, strict=True)
    #: network interface of the scheduler and the workers (e.g. ib0); default: jobqueue's
    interface: str | None = Field(None, min_length=1, max_length=64)
    #: the Python of the compute nodes; default: the one running serve (same environment)
    python: str | None = Field(None, min_length=1)
    #: shell lines run before the worker starts (module load ..., source .../activate)
    prologue: list[str] = Field(default_factory=list)
    #: extra #SBATCH / #PBS lines, without the prefix (e.g. "--qos=normal")
    directives: list[str] = Field(default_factory=list)
    #: where the compute nodes reach serve's scheduler; default: jobqueue's choice
    scheduler_host: str | None = Field(None, min_length=1, max_length=255)
    #: where every job writes its output (``~`` allowed; on a cluster, a folder the compute
    #: nodes share with this machine): never the folder serve was started from
    log_directory: str = Field("~/.partisim/dask-jobs", min_length=1, max_length=4096)

    @field_validator("memory")
    @classmethod
    def _memory(cls, v: str) -> str:
        if not _MEMORY.match(v.strip()):
            raise ValueError(f"tamaño de memoria inválido {v!r}; use por ejemplo 4GB, 512MB o 16GiB")
        return v.strip()

    @field_validator("walltime")
    @classmethod
    def _walltime(cls, v: str) -> str:
        if not _WALLTIME.match(v.strip()):
            raise ValueError(f"tiempo máximo inválido {v!r}; use HH:MM:SS (por ejemplo 02:00:00) o D-HH:MM:SS")
        return v.strip()

    @model_validator(mode="after")
    def _consistent(self) -> JobqueueSettings:
        if self.minimum_jobs > self.maximum_jobs:
            raise ValueError(f"minimum_jobs ({self.minimum_jobs}) no puede superar maximum_jobs ({self.maximum_jobs})")
        if self.cores % self.processes:
            raise ValueError(
                f"cores ({self.cores}) debe ser múltiplo de processes ({self.processes}): "
                "cada worker de Dask recibe cores/processes hilos"
            )
        return self


class DaskSettings(BaseModel):
    """The ``dask`` section of the config file (``--dask`` on the command line wins)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    address: str | None = None
    jobqueue: JobqueueSettings = Field(default_factory=JobqueueSettings)
    #: longest a task without a timeout of its own may run on a Dask worker
    task_timeout: float = Field(600.0, gt=0, le=7 * 86400, allow_inf_nan=False)
    #: longest wait for the scheduler when serve starts
    connect_timeout: float = Field(20.0, gt=0, le=600, allow_inf_nan=False)

    @field_validator("address")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        if v is not None:
            parse_dask_target(v)
        return v

    def target(self, override: str | None = None) -> DaskTarget | None:
        """``--dask`` if given, else this section's address; None: no Dask."""
        text = override if override is not None else self.address
        return parse_dask_target(text) if text else None


class Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    workers: list[WorkerEntry] = Field(default_factory=list)
    orchestrator: OrchestratorSettings = Field(default_factory=OrchestratorSettings)
    dask: DaskSettings = Field(default_factory=DaskSettings)
    path: str | None = None

    @model_validator(mode="after")
    def _unique(self) -> Config:
        seen_ids: set[str] = set()
        seen_addr: set[str] = set()
        for k, w in enumerate(self.workers):
            if w.id in seen_ids:
                raise ValueError(f"workers[{k}].id: id duplicado {w.id!r}")
            if w.address in seen_addr:
                raise ValueError(f"workers[{k}]: dirección duplicada {w.address}")
            seen_ids.add(w.id)
            seen_addr.add(w.address)
        return self

    def _relative(self, path: str) -> Path:
        """A path written in the file: relative ones are read from the file's folder."""
        p = Path(path).expanduser()
        if p.is_absolute() or self.path is None:
            return p
        return Path(self.path).parent / p

    def token_for(self, entry: WorkerEntry) -> str | None:
        """The bearer token for ``entry``: its own, else the shared one, else None
        (callers may then fall back to ``PARTISIM_TOKEN``). Reads token files now;
        `ConfigError` naming the file when one cannot be read."""
        if entry.token is not None:
            return entry.token
        if entry.token_file is not None:
            return read_token_file(self._relative(entry.token_file), f"{self.path}: {entry.id}.token_file")
        settings = self.orchestrator
        if settings.worker_token is not None:
            return settings.worker_token
        if settings.worker_token_file is not None:
            return read_token_file(
                self._relative(settings.worker_token_file), f"{self.path}: orchestrator.worker_token_file"
            )
        return None

    def ca_file(self, override: str | None = None) -> str | None:
        """The CA file for https: ``override`` (``--ca-file``), else ``PARTISIM_CA_FILE``,
        else the config's ``orchestrator.ca_file``; `ConfigError` if it does not exist."""
        chosen, where = override, "--ca-file"
        if not chosen:
            chosen, where = env_ca_file(), "PARTISIM_CA_FILE"
        if not chosen and self.orchestrator.ca_file:
            chosen, where = str(self._relative(self.orchestrator.ca_file)), f"{self.path}: orchestrator.ca_file"
        if not chosen:
            return None
        if not Path(chosen).is_file():
            raise ConfigError(f"{where}: no existe el archivo de la autoridad certificadora {chosen}")
        return chosen

    def worker(self, worker_id: str) -> WorkerEntry:
        for w in self.workers:
            if w.id == worker_id:
                return w
        known = ", ".join(w.id for w in self.workers) or "ninguno"
        raise ConfigError(f"worker desconocido: {worker_id!r} (configurados: {known})")


def parse_config(data: object, path: str = "<config>") -> Config:
    """Validate an already-decoded config object."""
    if not isinstance(data, dict):
        raise ConfigError(f'{path}: el contenido debe ser un objeto JSON con la clave "workers"')
    if "workers" not in data and "dask" not in data:  # with Dask, the workers are the cluster's
        raise ConfigError(f'{path}: falta la clave "workers" (lista de {{"id", "ip", "port"}})')
    if not isinstance(data.get("workers", []), list):
        raise ConfigError(f'{path}: "workers" debe ser una lista')
    try:
        return Config.model_validate({**data, "path": path})
    except ValidationError as exc:
        raise ConfigError(f"{path}: {explain_validation(exc.errors())[0]}") from None


def load_config(path: str | Path = DEFAULT_CONFIG_PATH) -> Config:
    """Read and validate config_workers.json."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"no existe el archivo de configuración {p} (cree uno con la lista de workers, o use --config RUTA)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"no se puede leer {p}: {explain_os_error(exc)}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: el archivo no es texto UTF-8 (byte {exc.start}); guárdelo como UTF-8 (JSON)") from None
    too_deep = f"{p}: el JSON está anidado a demasiada profundidad; revise el archivo (se espera un objeto con workers)"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{p}: {explain_json_error(exc)}") from None
    except RecursionError:
        raise ConfigError(too_deep) from None
    try:
        return parse_config(data, str(p))
    except RecursionError:
        raise ConfigError(too_deep) from None
