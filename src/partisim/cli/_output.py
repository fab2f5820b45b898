"""Console helpers shared by every CLI command (colours only on a terminal)."""

from __future__ import annotations

from rich.console import Console

__all__ = ["console", "err_console", "fail"]

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def fail(message: str, code: int = 2) -> int:
    """Print a Spanish error on stderr and return the exit code to use."""
    err_console.print(f"[bold red]Error:[/] {message}", soft_wrap=True)
    return code
