"""Rich tables that fit the terminal (80 columns, or a pipe, included).

A table is described by its columns: numbers never wrap and are never cut (the column
keeps the width of its widest value), free text may wrap, and optional columns go, the
least useful first, until the table fits. Headers take their short form before any
column is dropped, and a caption names what was left out. Should the columns that must
stay still not fit (a 60-column terminal), each row is printed as a small record, one
"field  value" line per column, rather than let rich squeeze a value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.table import Table
from rich.text import Text

__all__ = ["Column", "FittedTable", "fitted_table", "table_width"]

Cell = str | Text


@dataclass(frozen=True)
class Column:
    header: str
    #: header when space is short ("Partículas" -> "Part.")
    short: str | None = None
    justify: Literal["left", "right", "center"] = "left"
    #: free text that may wrap down to this width (0: never wrapped, never cut)
    wrap: int = 0
    #: 0: always shown; otherwise dropped when the table is too wide, higher first
    drop: int = 0


def _width(cell: Cell) -> int:
    text = cell.plain if isinstance(cell, Text) else cell
    return max((cell_len(line) for line in text.splitlines()), default=0)


def table_width(widths: Sequence[int]) -> int:
    """Width of a rich table with the default box: padding of 1 on each side of a cell
    and a rule between and around the columns."""
    return sum(widths) + 3 * len(widths) + 1


def _narrowest(column: Column, header: str, cells: Sequence[Cell]) -> int:
    widest = max([_width(c) for c in cells] + [0])
    if column.wrap:  # wrapped at words: never narrower than its longest word
        words = [w for c in cells for w in (c.plain if isinstance(c, Text) else c).split()]
        longest = max([cell_len(w) for w in words + header.split()] + [0])
        return max(min(widest, column.wrap), longest)
    return max(widest, cell_len(header))


class FittedTable:
    """A table that takes its columns when printed, from the width it is given (so the
    same object prints right on an 80-column terminal, a wide one, or a pipe)."""

    def __init__(
        self,
        columns: Sequence[Column],
        rows: Sequence[Sequence[Cell]],
        *,
        title: str | None = None,
        caption: str | None = None,
    ) -> None:
        self.columns = list(columns)
        self.rows = [list(r) for r in rows]
        self.title = title
        self.caption = caption

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.build(options.max_width)

    def build(self, width: int) -> RenderableType:
        return fitted_table(self.columns, self.rows, width, title=self.title, caption=self.caption)


def fitted_table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
    width: int,
    *,
    title: str | None = None,
    caption: str | None = None,
) -> RenderableType:
    """A table of ``rows`` (one cell per column) no wider than ``width``; when even the
    columns that must stay do not fit, the rows as records (`stacked_rows`)."""
    shown = list(range(len(columns)))
    use_short = False

    def header(column: Column, short: bool) -> str:
        return column.short if short and column.short else column.header

    def need(short: bool) -> int:
        return table_width([_narrowest(columns[i], header(columns[i], short), [r[i] for r in rows]) for i in shown])

    while need(use_short) > width:
        if not use_short and any(columns[i].short for i in shown):
            use_short = True
            continue
        optional = [i for i in shown if columns[i].drop]
        if not optional:
            break
        shown.remove(max(optional, key=lambda i: (columns[i].drop, i)))
    if need(use_short) > width:
        return stacked_rows(columns, rows, title=title, caption=caption)
    notes = [caption] if caption else []
    hidden = [columns[i].header for i in range(len(columns)) if i not in shown]
    if hidden:
        notes.append(f"Columnas ocultas por el ancho del terminal: {', '.join(hidden)}")
    table = Table(title=title, title_justify="left", caption="\n".join(notes) or None, caption_justify="left")
    for i in shown:
        column = columns[i]
        title_text = header(column, use_short)
        narrowest = _narrowest(column, title_text, [r[i] for r in rows])
        # a column never gets narrower than `narrowest`; should the terminal be narrower
        # still, a value folds onto a second line rather than lose its last digits
        # only free text may give up width: rich would otherwise narrow the widest column
        # first (an id, a number) and, given its min_width back, push the table past the edge
        table.add_column(
            title_text, justify=column.justify, overflow="fold", min_width=narrowest, no_wrap=not column.wrap
        )
    for row in rows:
        table.add_row(*(row[i] for i in shown))
    return table


def stacked_rows(
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
    *,
    title: str | None = None,
    caption: str | None = None,
) -> RenderableType:
    """Each row as a record: its first cell as a heading, then one line per other column
    (header, value). Two narrow columns fit where the whole table cannot, so no column is
    hidden and no value is cut; a long free text wraps at its words."""
    parts: list[RenderableType] = []
    if title:
        parts.append(Text(title, style="italic"))
    for row in rows:
        record = Table(show_header=False, box=None, padding=(0, 1, 0, 2), pad_edge=True)
        record.add_column(no_wrap=True, style="dim")
        record.add_column(overflow="fold")
        for column, cell in zip(columns[1:], row[1:], strict=True):
            record.add_row(column.header, cell)
        first = row[0] if isinstance(row[0], Text) else Text(row[0], style="bold")
        parts.append(Group(Text.assemble((f"{columns[0].header} ", "dim"), first), record))
    if caption:
        parts.append(Text(caption))
    return Group(*parts)
