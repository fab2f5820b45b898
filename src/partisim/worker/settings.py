"""Worker settings: one frozen object built from CLI options, environment and defaults.

Precedence: a command-line option, then its environment variable, then the
default. Every value is checked here, so a bad one stops the worker before it
binds a port, with a Spanish message naming the option and its variable.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from partisim.defaults import DEFAULT_CONFIG_PATH, SIM_IMAGE
from partisim.errors import ConfigError, explain_os_error
from partisim.fleet.tokens import check_server_token

__all__ = [
    "WorkerSettings",
    "Limits",
    "RUNNERS",
    "OPTIONS",
    "build_settings",
    "cpu_count",
    "is_loopback",
    "open_listener_warning",
]

RUNNERS = ("auto", "process", "docker")
DEFAULT_IMAGE = SIM_IMAGE


def cpu_count() -> int:
    """CPUs this process may use (affinity-aware where the OS tells)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Limits:
    """What one task may ask of this worker; each refusal is a 422 naming the limit."""

    max_particles: int = 1_000_000
    max_steps: int = 10_000_000
    max_work: int = 10_000_000_000  # particles x steps
    max_body_bytes: int = 64 * 1024


@dataclass(frozen=True)
class WorkerSettings:
    host: str = "0.0.0.0"
    port: int = 8080
    worker_id: str | None = None
    config_path: str = DEFAULT_CONFIG_PATH
    config_explicit: bool = False  # --config given: a missing file is then an error
    runner: str = "auto"
    capacity: int = field(default_factory=cpu_count)
    queue_size: int | None = None  # None: 4 x capacity
    max_timeout: float = 600.0
    grace: float = 30.0
    retain: int = 10_000  # finished tasks remembered (idempotency window)
    replay_window: float = 10.0  # minutes a finished task's id is answered from its record
    token: str | None = field(default=None, repr=False)
    docker_image: str = DEFAULT_IMAGE
    docker_bin: str = "docker"
    docker_cpus: float = 1.0
    docker_memory: str = "1g"
    docker_pids: int = 256
    task_memory_mb: int | None = None
    limits: Limits = field(default_factory=Limits)
    log_level: str = "info"
    request_timeout: float = 10.0  # seconds to receive a request's headers and body
    max_connections: int = 1000  # open connections; beyond, 503
    tls_cert: str | None = None
    tls_key: str | None = None

    @property
    def effective_queue_size(self) -> int:
        return 4 * self.capacity if self.queue_size is None else self.queue_size

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"


def is_loopback(host: str) -> bool:
    """Only this machine can reach `host` (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to any interface


def open_listener_warning(settings: WorkerSettings) -> str | None:
    """The Spanish warning for a worker that anyone on the network may use, or None."""
    if settings.token or is_loopback(settings.host):
        return None
    where = " (todas las interfaces)" if settings.host in ("0.0.0.0", "::", "") else ""
    return (
        f"este worker escucha en {settings.host}{where} SIN token: cualquiera que alcance esta máquina "
        "puede ejecutar tareas y ver su estado. Defina PARTISIM_TOKEN (o --token-file) o escuche solo en "
        "127.0.0.1 (--host 127.0.0.1)"
    )


# -- value parsers: each raises ValueError with a Spanish reason ---------------


def _int(text: str) -> int:
    raw = text.strip().replace("_", "")
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        value = float(raw)  # accept 1e10 for big budgets
    except ValueError:
        raise ValueError(f"debe ser un número entero (recibido {text!r})") from None
    if not math.isfinite(value) or value != int(value):
        raise ValueError(f"debe ser un número entero (recibido {text!r})")
    return int(value)


def _bounded_int(lo: int, hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = _int(text)
        if not lo <= value <= hi:
            raise ValueError(f"debe estar entre {lo} y {hi} (recibido {value})")
        return value

    return parse


def _float_in(hi: float, *, zero_ok: bool) -> Callable[[str], float]:
    """A finite number in (0, hi], or in [0, hi] when `zero_ok`."""
    allowed = f"estar entre 0 y {hi:g}" if zero_ok else f"ser un número mayor que 0 y como máximo {hi:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"debe ser un número (recibido {text!r})") from None
        if not (math.isfinite(value) and (value >= 0 if zero_ok else value > 0) and value <= hi):
            raise ValueError(f"debe {allowed} (recibido {text!r})")
        return value

    return parse


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in options:
            raise ValueError(f"debe ser uno de: {', '.join(options)} (recibido {text!r})")
        return value

    return parse


def _text(max_len: int) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip()
        if not value or len(value) > max_len:
            raise ValueError(f"no puede estar vacío ni tener más de {max_len} caracteres")
        return value

    return parse


def _worker_id(text: str) -> str:
    value = text.strip()
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", value):
        raise ValueError(f"solo letras, números, '_', '.' y '-' (1 a 64 caracteres); recibido {text!r}")
    return value


def _memory(text: str) -> str:
    value = text.strip().lower()
    if not re.fullmatch(r"[0-9]+[bkmg]?", value):
        raise ValueError(f"use un tamaño como 512m o 2g (recibido {text!r})")
    return value


@dataclass(frozen=True)
class Option:
    name: str  # WorkerSettings / Limits attribute
    flag: str  # command-line option
    env: str | None  # environment variable
    parse: Callable[[str], Any]
    help: str


#: every setting, in the order `partisim worker --help` shows them
OPTIONS: tuple[Option, ...] = (
    Option("host", "--host", "PARTISIM_HOST", _text(255), "dirección en la que escuchar (por defecto 0.0.0.0)"),
    Option("port", "--port", "PARTISIM_PORT", _bounded_int(0, 65535), "puerto (por defecto 8080; 0 = uno libre)"),
    Option(
        "worker_id",
        "--worker-id",
        "WORKER_ID",
        _worker_id,
        "identificador del worker (por defecto: según la IP y config_workers.json)",
    ),
    Option(
        "config_path",
        "--config",
        "PARTISIM_CONFIG",
        _text(4096),
        "archivo de configuración de workers (por defecto config_workers.json)",
    ),
    Option(
        "runner",
        "--runner",
        "PARTISIM_RUNNER",
        _choice(RUNNERS),
        "cómo ejecutar las tareas: auto (Docker si está disponible), process o docker",
    ),
    Option(
        "capacity",
        "--capacity",
        "PARTISIM_CAPACITY",
        _bounded_int(1, 1024),
        "tareas simultáneas como máximo (por defecto: número de CPU)",
    ),
    Option(
        "queue_size",
        "--queue-size",
        "PARTISIM_QUEUE_SIZE",
        _bounded_int(0, 100_000),
        "tareas en espera como máximo antes de responder 429 (por defecto 4 x capacidad)",
    ),
    Option(
        "max_timeout",
        "--max-timeout",
        "PARTISIM_MAX_TIMEOUT",
        _float_in(7 * 86400, zero_ok=False),
        "tiempo límite máximo de una tarea en segundos (por defecto 600)",
    ),
    Option(
        "grace",
        "--grace",
        "PARTISIM_GRACE",
        _float_in(86400, zero_ok=True),
        "segundos que se espera a las tareas en curso al recibir SIGTERM (por defecto 30)",
    ),
    Option(
        "retain",
        "--retain",
        "PARTISIM_RETAIN",
        _bounded_int(1, 1_000_000),
        "tareas terminadas que se recuerdan para /tasks e idempotencia (por defecto 10000)",
    ),
    Option(
        "replay_window",
        "--replay-window",
        "PARTISIM_REPLAY_WINDOW",
        _float_in(7 * 24 * 60, zero_ok=True),
        "minutos durante los que un task_id repetido recibe el resultado ya medido (marcado replayed) en lugar "
        "de ejecutarse otra vez (por defecto 10; 0: siempre se ejecuta de nuevo)",
    ),
    Option(
        "token_file",
        "--token-file",
        "PARTISIM_TOKEN_FILE",
        _text(4096),
        "archivo con el token exigido en Authorization: Bearer (o la variable PARTISIM_TOKEN)",
    ),
    Option(
        "docker_image",
        "--docker-image",
        "PARTISIM_DOCKER_IMAGE",
        _text(255),
        f"imagen de simulación para el runner docker (por defecto {DEFAULT_IMAGE})",
    ),
    Option(
        "docker_bin", "--docker-bin", "PARTISIM_DOCKER_BIN", _text(4096), "ejecutable de Docker (por defecto docker)"
    ),
    Option(
        "docker_cpus",
        "--docker-cpus",
        "PARTISIM_DOCKER_CPUS",
        _float_in(1024, zero_ok=False),
        "CPU por contenedor (por defecto 1)",
    ),
    Option(
        "docker_memory", "--docker-memory", "PARTISIM_DOCKER_MEMORY", _memory, "memoria por contenedor (por defecto 1g)"
    ),
    Option(
        "docker_pids",
        "--docker-pids",
        "PARTISIM_DOCKER_PIDS",
        _bounded_int(16, 1_000_000),
        "procesos por contenedor como máximo (por defecto 256)",
    ),
    Option(
        "task_memory_mb",
        "--task-memory-mb",
        "PARTISIM_TASK_MEMORY_MB",
        _bounded_int(16, 1 << 24),
        "memoria adicional por tarea en MiB con el runner process (por defecto sin límite)",
    ),
    Option(
        "max_particles",
        "--max-particles",
        "PARTISIM_MAX_PARTICLES",
        _bounded_int(1, 1_000_000),
        "NUM_PARTICULAS máximo por tarea (por defecto 1000000)",
    ),
    Option(
        "max_steps",
        "--max-steps",
        "PARTISIM_MAX_STEPS",
        _bounded_int(1, 10_000_000),
        "NUM_PASOS máximo por tarea (por defecto 10000000)",
    ),
    Option(
        "max_work",
        "--max-work",
        "PARTISIM_MAX_WORK",
        _bounded_int(1, 10**13),
        "presupuesto de trabajo por tarea: NUM_PARTICULAS x NUM_PASOS máximo (por defecto 1e10)",
    ),
    Option(
        "max_body_bytes",
        "--max-body",
        "PARTISIM_MAX_BODY",
        _bounded_int(256, 64 * 1024 * 1024),
        "tamaño máximo del cuerpo de una petición en bytes (por defecto 65536)",
    ),
    Option(
        "request_timeout",
        "--request-timeout",
        "PARTISIM_REQUEST_TIMEOUT",
        _float_in(3600, zero_ok=False),
        "segundos para recibir las cabeceras y el cuerpo de una petición; después, 408 y se cierra la "
        "conexión (por defecto 10)",
    ),
    Option(
        "max_connections",
        "--max-connections",
        "PARTISIM_MAX_CONNECTIONS",
        _bounded_int(2, 100_000),
        "conexiones abiertas como máximo; más allá, 503 (por defecto 1000)",
    ),
    Option(
        "tls_cert",
        "--tls-cert",
        "PARTISIM_TLS_CERT",
        _text(4096),
        "certificado TLS (PEM): el worker atiende por https (requiere --tls-key)",
    ),
    Option("tls_key", "--tls-key", "PARTISIM_TLS_KEY", _text(4096), "clave privada TLS (PEM) del certificado"),
    Option(
        "log_level",
        "--log-level",
        "PARTISIM_LOG_LEVEL",
        _choice(("debug", "info", "warning", "error")),
        "nivel de detalle del registro (por defecto info)",
    ),
)

_LIMIT_FIELDS = frozenset(f.name for f in fields(Limits))


def _read_token_file(path: str) -> str:
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"--token-file: no se puede leer {path}: {explain_os_error(exc)}") from None
    if not token:
        raise ConfigError(f"--token-file: el archivo {path} está vacío")
    return token


def _check_tls(cert: str | None, key: str | None) -> None:
    """Both files or neither, and they load: a clear error now rather than a traceback at bind."""
    if cert is None and key is None:
        return
    if cert is None or key is None:
        missing = "--tls-cert / PARTISIM_TLS_CERT" if cert is None else "--tls-key / PARTISIM_TLS_KEY"
        raise ConfigError(f"TLS necesita el certificado y la clave: falta {missing}")
    for flag, path in (("--tls-cert", cert), ("--tls-key", key)):
        if not Path(path).is_file():
            raise ConfigError(f"{flag}: no existe el archivo {path}")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise ConfigError(
            f"--tls-cert/--tls-key: no se pudo cargar el certificado {cert} con la clave {key} "
            f"({exc.reason or exc}); ¿son PEM y se corresponden?"
        ) from None
    except OSError as exc:
        raise ConfigError(f"--tls-cert/--tls-key: no se pudo leer {exc.filename or cert}: {exc.strerror}") from None


def build_settings(cli: Mapping[str, object] | None = None, environ: Mapping[str, str] | None = None) -> WorkerSettings:
    """Merge command-line values (strings or None) with the environment and the defaults.

    Raises `ConfigError` naming the option and its variable.
    """
    cli = dict(cli or {})
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for opt in OPTIONS:
        raw = cli.get(opt.name)
        source = opt.flag
        if raw is None and opt.env and env.get(opt.env, "").strip():
            raw, source = env[opt.env], opt.env
        if raw is None:
            continue
        try:
            values[opt.name] = opt.parse(str(raw))
        except ValueError as exc:
            where = opt.flag + (f" / {opt.env}" if opt.env else "")
            raise ConfigError(f"{where}: {exc} (desde {source})") from None
    token = None
    token_file = values.pop("token_file", None)
    if token_file:
        token = _read_token_file(token_file)
        check_server_token(token, f"--token-file {token_file}")
    elif env.get("PARTISIM_TOKEN", "").strip():
        token = env["PARTISIM_TOKEN"].strip()
        check_server_token(token, "PARTISIM_TOKEN")
    _check_tls(values.get("tls_cert"), values.get("tls_key"))
    limits = Limits(**{k: values.pop(k) for k in list(values) if k in _LIMIT_FIELDS})
    # --config or PARTISIM_CONFIG given (not the default): a missing file is then an error
    return WorkerSettings(**values, token=token, limits=limits, config_explicit="config_path" in values)
