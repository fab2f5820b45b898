"""config_workers.json: the list of workers and the orchestrator's settings.

The users' format, validated once here; every command takes the result.
Errors are `ConfigError`s whose Spanish message names the file and the field.
"""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from partisim.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG_PATH", "DEFAULT_SERVER", "default_server",
    "Config", "WorkerEntry", "OrchestratorSettings", "load_config", "parse_config",
]

DEFAULT_CONFIG_PATH = "config_workers.json"

#: Where the clients of ``partisim serve`` look for it (here, not in `server_client`,
#: so the CLI parser can name it without importing httpx).
DEFAULT_SERVER = "http://127.0.0.1:8000"


def default_server() -> str:
    """``PARTISIM_SERVER`` if set, else the local default."""
    return os.environ.get("PARTISIM_SERVER") or DEFAULT_SERVER


class WorkerEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    ip: str
    port: int = Field(8080, ge=1, le=65535, strict=True)

    @field_validator("ip")
    @classmethod
    def _valid_ip(cls, v: str) -> str:
        try:
            return str(ipaddress.ip_address(v.strip()))
        except ValueError:
            raise ValueError(f"dirección IP inválida: {v!r}") from None

    @property
    def url(self) -> str:
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"http://{host}:{self.port}"

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


class Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    workers: list[WorkerEntry] = Field(default_factory=list)
    orchestrator: OrchestratorSettings = Field(default_factory=OrchestratorSettings)
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

    def worker(self, worker_id: str) -> WorkerEntry:
        for w in self.workers:
            if w.id == worker_id:
                return w
        known = ", ".join(w.id for w in self.workers) or "ninguno"
        raise ConfigError(f"worker desconocido: {worker_id!r} (configurados: {known})")


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in err.get("loc", ()))
        loc = loc.replace(".[", "[")
        msg = err.get("msg", "valor inválido")
        if err.get("type") == "value_error":
            msg = str(err.get("ctx", {}).get("error", msg))
        elif err.get("type") == "missing":
            msg = "falta este campo"
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def parse_config(data: Any, path: str = "<config>") -> Config:
    """Validate an already-decoded config object."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: el contenido debe ser un objeto JSON con la clave \"workers\"")
    if "workers" not in data:
        raise ConfigError(f"{path}: falta la clave \"workers\" (lista de {{\"id\", \"ip\", \"port\"}})")
    if not isinstance(data["workers"], list):
        raise ConfigError(f"{path}: \"workers\" debe ser una lista")
    try:
        return Config.model_validate({**data, "path": path})
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_describe(exc)}") from None


def load_config(path: str | Path = DEFAULT_CONFIG_PATH) -> Config:
    """Read and validate config_workers.json."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"no existe el archivo de configuración {p} (cree uno con la lista de workers, "
            "o use --config RUTA)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"no se puede leer {p}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{p}: JSON inválido en la línea {exc.lineno}, columna {exc.colno}: {exc.msg}") from None
    return parse_config(data, str(p))
