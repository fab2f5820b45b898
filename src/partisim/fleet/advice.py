"""What partisim tells the user when no worker answers: the headline, the checklist
("Qué revisar") and the note on tasks queued meanwhile. One text for the CLI, the
menu, the serve log and the dashboard."""

from __future__ import annotations

__all__ = ["NO_ACTIVE_WORKERS", "no_worker_hints", "queued_without_workers"]

NO_ACTIVE_WORKERS = "NO HAY MÁQUINAS ACTIVAS"


def no_worker_hints(config_path: str | None = None) -> list[str]:
    """What to check, one item per line (without bullets)."""
    where = f" ({config_path})" if config_path else ""
    return [
        "Que el servicio worker esté en marcha en cada máquina: ./start_worker.sh "
        "o `partisim worker --host 0.0.0.0 --port 8080`.",
        f"Que las direcciones y puertos del archivo de configuración{where} sean los de sus máquinas.",
        "Que la red y el cortafuegos permitan conexiones a ese puerto (prueba: curl http://IP:PUERTO/ping).",
        "Para probar en este equipo sin máquinas: `partisim demo --local 2`.",
    ]


def queued_without_workers(count: int) -> str:
    """The warning for tasks submitted while no worker is active."""
    tasks = "la tarea se quedará" if count == 1 else "las tareas se quedarán"
    return f"{NO_ACTIVE_WORKERS}: {tasks} en cola hasta que un worker responda."
