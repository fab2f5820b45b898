"""Console helpers shared by every CLI command (colours only on a terminal)."""

from __future__ import annotations

import logging

from rich.console import Console
from rich.markup import escape

__all__ = ["console", "err_console", "fail", "install_log_handler", "warn"]

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def fail(message: str, code: int = 2) -> int:
    """Print a Spanish error on stderr and return the exit code to use."""
    err_console.print(f"[bold red]Error:[/] {escape(message)}", soft_wrap=True)  # text, not markup
    return code


def warn(message: str) -> None:
    """Print a Spanish warning on stderr as "AVISO: ..." (the message is shown verbatim)."""
    err_console.print(f"[bold yellow]AVISO:[/] {escape(message)}", soft_wrap=True)


def install_log_handler() -> None:
    """Timestamped log lines on stderr: one rich handler on the root logger (levels are the caller's)."""
    from rich.logging import RichHandler

    root = logging.getLogger()
    if not any(isinstance(h, RichHandler) for h in root.handlers):
        root.addHandler(RichHandler(console=err_console, show_path=False, log_time_format="[%Y-%m-%d %H:%M:%S]"))
