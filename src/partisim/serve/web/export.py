"""Exports of the queue, server side: a selection of tasks streamed as CSV or NDJSON.

The rows are read page by page (``page_size`` at a time, a range of the primary key)
up to the last task present when the export started, so memory stays flat however
many there are and none is left out. CSV rows come flat out of SQLite (`results.COLUMNS`,
the same cells as `results.to_csv`); NDJSON lines are the tasks as ``/api/tasks`` shows
them. Both are made without decoding the stored JSON in Python.

The chunks are produced by a plain generator: Starlette runs each step in a thread, so
the event loop never waits for a page.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from partisim.serve.queue.rows import FLAT_BOOLEANS, Selection, SqlValue
from partisim.serve.queue.store import TaskQueue
from partisim.serve.results.rows import COLUMNS

__all__ = ["EXPORT_FORMATS", "export_chunks"]

#: format -> media type
EXPORT_FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "ndjson": "application/x-ndjson; charset=utf-8",
}


def export_chunks(queue: TaskQueue, fmt: str, selection: Selection, *, upto: int, page_size: int) -> Iterator[str]:
    """The export of ``selection`` (tasks with ``seq <= upto``), one chunk per page."""
    if fmt == "csv":
        return _csv(queue, selection, upto, page_size)
    if fmt == "ndjson":
        return _ndjson(queue, selection, upto, page_size)
    raise ValueError(f"unknown export format {fmt!r}")


def _csv(queue: TaskQueue, selection: Selection, upto: int, page_size: int) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    # SQLite has no booleans: 1/0 become the True/False that `results.to_csv` writes
    booleans = [k for k, name in enumerate(COLUMNS, start=1) if name in FLAT_BOOLEANS]
    after = 0
    while True:
        rows = queue.reads.flat_rows(COLUMNS, selection, after_seq=after, upto=upto, limit=page_size)
        if rows:
            seq = rows[-1][0]
            assert isinstance(seq, int), "the first column of a flat row is its seq"
            after = seq
            writer.writerows(_cells(row, booleans) for row in rows)
        chunk = out.getvalue()
        if chunk:
            yield chunk
            out.seek(0)
            out.truncate()
        if len(rows) < page_size:
            return


def _cells(row: tuple[SqlValue, ...], booleans: list[int]) -> list[SqlValue]:
    cells = list(row)
    for k in booleans:
        cells[k] = None if cells[k] is None else bool(cells[k])
    return cells[1:]  # without the seq


def _ndjson(queue: TaskQueue, selection: Selection, upto: int, page_size: int) -> Iterator[str]:
    after = 0
    while True:
        rows = queue.reads.view_rows(selection, after_seq=after, upto=upto, limit=page_size)
        if rows:
            after = rows[-1][0]
            yield "".join(line + "\n" for _, line in rows)
        if len(rows) < page_size:
            return
