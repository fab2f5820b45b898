"""Every `partisim` command, the module that registers it and its one-line help.

`partisim --help` lists the commands from here alone, and a command imports only
its own module, so no command pays for the others' imports."""

from __future__ import annotations

__all__ = ["COMMANDS", "command_help"]

#: command -> (module of partisim.cli that registers it, one-line help), in listing order
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("run", "ejecuta una simulación en esta máquina"),
    "animate": ("animate", "anima las partículas de una simulación en un archivo .gif o .mp4"),
    "theory": ("theory", "predicciones de la teoría cinética (y comparación con una ejecución)"),
    "orchestrator": ("orchestrator", "menú interactivo del orquestador"),
    "ping": ("orchestrator", "verifica qué workers responden (tabla de estado)"),
    "status": ("orchestrator", "estado detallado de cada worker (Docker, imagen, capacidad)"),
    "exec": ("orchestrator", "ejecuta una tarea en un worker concreto"),
    "demo": ("orchestrator", "demo completa: ping, estado y Python vs Cython"),
    "check": ("orchestrator", "suite de pruebas de comunicación (test_communication.py)"),
    "serve": ("serve", "servicio orquestador: cola SQLite, planificador, bandeja y API REST"),
    "submit": ("serve", "encolar un archivo JSON de tareas en partisim serve"),
    "sweep": ("serve", "encolar un barrido de parámetros (producto cartesiano) como un lote"),
    "wait": ("serve", "esperar a que termine un lote (barra de progreso)"),
    "results": ("results", "resultados de las tareas: tabla, CSV o JSON"),
    "queue": ("queue", "la cola de partisim serve: lotes, workers y tareas pendientes"),
    "cancel": ("queue", "cancela tareas en cola o en curso (por id o un lote entero)"),
    "report": ("results", "informe PNG: tiempo vs partículas por motor y aceleración cython/python"),
    "worker": ("worker", "inicia el servicio worker (API HTTP que ejecuta simulaciones)"),
    "token": ("token", "imprime un token aleatorio para proteger serve y los workers"),
    "images": ("images", "construye el wheelhouse y las imágenes Docker (también sin conexión)"),
}


def command_help(name: str) -> str:
    return COMMANDS[name][1]
