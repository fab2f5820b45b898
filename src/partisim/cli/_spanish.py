"""Spanish for argparse's own words (usage, errors, the -h help line).

argparse looks its messages up through the module-level `_` at call time, so
one translation function here localises every parser of the command.
"""

from __future__ import annotations

import argparse

__all__ = ["install", "TextFormatter"]

_TRANSLATIONS = {
    "usage: ": "uso: ",
    "options": "opciones",
    "optional arguments": "opciones",
    "positional arguments": "argumentos",
    "show this help message and exit": "muestra esta ayuda y sale",
    "show program's version number and exit": "muestra la versión y sale",
    "%(prog)s: error: %(message)s\n": "%(prog)s: error: %(message)s\n",
    "the following arguments are required: %s": "faltan los argumentos: %s",
    "unrecognized arguments: %s": "argumentos no reconocidos: %s",
    "expected one argument": "falta el valor",
    "argument %(argument_name)s: %(message)s": "argumento %(argument_name)s: %(message)s",
    "invalid choice: %(value)r (choose from %(choices)s)": "opción inválida: %(value)r (elija entre %(choices)s)",
    "invalid %(type)s value: %(value)r": "valor inválido (%(type)s): %(value)r",
    "not allowed with argument %s": "no se permite junto con %s",
    "ambiguous option: %(option)s could match %(matches)s": "opción ambigua: %(option)s puede ser %(matches)s",
}


def _translate(message: str) -> str:
    # no gettext look-up for the rest: it searches the disk for catalogues on every
    # call (tens of ms per `partisim` command), and argparse's own text is the fallback
    return _TRANSLATIONS.get(message, message)


def install() -> None:
    argparse._ = _translate  # type: ignore[attr-defined]


class TextFormatter(argparse.RawDescriptionHelpFormatter):
    """Help whose description and epilog keep their paragraphs and examples, wrapped at
    words to the terminal's width: a prose line joins its paragraph and wraps; an indented
    example line stays whole, its ``# comment`` moved below it when the line is too long."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        import textwrap

        # an option's help: at spaces only (en-cola, 127.0.0.1:8000 stay whole)
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False, break_long_words=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap

        # a word is never split: not at its hyphens (partisim-base:bookworm), not in the middle
        wrap = textwrap.TextWrapper(width, break_on_hyphens=False, break_long_words=False)
        out: list[str] = []
        prose: list[str] = []

        def flush() -> None:
            if prose:
                wrap.initial_indent = wrap.subsequent_indent = indent
                out.extend(wrap.wrap(" ".join(prose)))
                prose.clear()

        for line in text.splitlines():
            if not line.strip():
                flush()
                out.append("")
            elif line[0].isspace():
                flush()
                command, mark, comment = line.partition("  #")
                if len(indent + line) > width and mark:
                    out.extend(_command_lines(indent + command.rstrip(), width))
                    margin = indent + " " * (len(line) - len(line.lstrip()) + 2)
                    wrap.initial_indent, wrap.subsequent_indent = margin, margin + "  "
                    out.extend(wrap.wrap("# " + comment.strip()))
                else:
                    out.extend(_command_lines(indent + line, width))
            else:
                prose.append(line.strip())
        flush()
        return "\n".join(out)


def _command_lines(line: str, width: int) -> list[str]:
    """An example command, whole if it fits; else split at words into lines that end in
    `` \\`` (the shell's continuation, so it still pastes as one command)."""
    import textwrap

    if len(line) <= width:
        return [line]
    margin = line[: len(line) - len(line.lstrip())]
    wrap = textwrap.TextWrapper(
        width - 2,
        initial_indent=margin,
        subsequent_indent=margin + "    ",
        break_on_hyphens=False,
        break_long_words=False,
    )
    parts = wrap.wrap(line.strip())
    return [part + " \\" for part in parts[:-1]] + parts[-1:]
