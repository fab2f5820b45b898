"""``--verify K`` of ``results`` and ``report``: re-run K tasks on another worker, with a
progress bar, and print whether the checksums agree (exit code 1 when one does not)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from partisim.cli._output import console
from partisim.sim.numbers import count as plural

if TYPE_CHECKING:
    from partisim.serve.client import Check, ServerClient

__all__ = ["print_checks", "verify"]


def verify(client: ServerClient, batch: str | None, count: int, timeout: float | None) -> list[Check]:
    from partisim.orchestrator.batches import verify_batch
    from partisim.orchestrator.views import BatchProgress

    console.print(f"Verificando {plural(count, 'tarea', 'tareas')} en otro worker...")
    with BatchProgress(console, "verificación") as bar:
        return verify_batch(client, batch, count, timeout=timeout, on_progress=bar.update)


def print_checks(checks: list[Check]) -> int:
    from partisim.orchestrator.views import checks_table

    console.print(checks_table(checks))
    bad = [c for c in checks if c.match is False]
    unverified = [c for c in checks if c.match is None]
    if bad:
        console.print(f"[bold red]¡{len(bad)} checksums NO COINCIDEN![/] Los resultados no son reproducibles.")
        return 1
    if unverified:
        console.print(f"[yellow]{plural(len(unverified), 'tarea no se pudo', 'tareas no se pudieron')} verificar[/]")
        return 1
    console.print(f"[green]Los {len(checks)} checksums coinciden.[/]")
    return 0
