"""Console helpers shared by every CLI command (colours only on a terminal).

The rich consoles are made on first use: building the parser (``partisim --help``)
never imports rich."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from types import TracebackType

    from rich.console import Console

__all__ = ["console", "err_console", "fail", "install_log_handler", "warn"]


class _LazyConsole:
    """Stands for a `rich.console.Console` made at its first attribute access."""

    def __init__(self, *, stderr: bool = False, highlight: bool = True) -> None:
        self._stderr = stderr
        self._highlight = highlight
        self._console: Console | None = None

    def _real(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr, highlight=self._highlight)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real(), name)

    # special methods are looked up on the class, not through __getattr__ (rich's Live
    # uses the console as a context manager)
    def __enter__(self) -> Console:
        return self._real().__enter__()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._real().__exit__(kind, exc, tb)


console = cast("Console", _LazyConsole(highlight=False))
err_console = cast("Console", _LazyConsole(stderr=True, highlight=False))


def fail(message: str, code: int = 2) -> int:
    """Print a Spanish error on stderr and return the exit code to use. On a terminal
    the text wraps at its words to the terminal's width; in a pipe it stays one line."""
    from rich.markup import escape

    err_console.print(f"[bold red]Error:[/] {escape(message)}", soft_wrap=not err_console.is_terminal)
    return code


def warn(message: str) -> None:
    """Print a Spanish warning on stderr as "AVISO: ..." (the message is shown verbatim,
    wrapped at its words on a terminal, one line in a pipe)."""
    from rich.markup import escape

    err_console.print(f"[bold yellow]AVISO:[/] {escape(message)}", soft_wrap=not err_console.is_terminal)


def install_log_handler() -> None:
    """Timestamped log lines on stderr: one rich handler on the root logger (levels are the caller's)."""
    import logging

    from rich.logging import RichHandler

    root = logging.getLogger()
    if not any(isinstance(h, RichHandler) for h in root.handlers):
        root.addHandler(RichHandler(console=err_console, show_path=False, log_time_format="[%Y-%m-%d %H:%M:%S]"))
