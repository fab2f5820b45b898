"""The live dashboard of ``partisim serve``: the page at ``/``, its static assets, the
Server-Sent Events stream ``/api/events``, chart data ``/api/charts`` and sweeps
``POST /api/sweeps``.

The page is plain HTML, CSS and JavaScript shipped in ``serve/web/static`` (no
framework, no CDN), so it works on machines without internet. The event stream pushes
the state of the queue and the workers when it changes, coalesced to a few messages a
second and only the parts that changed (see `serve.live`).
"""

from __future__ import annotations

import dataclasses
import html
import logging
import re
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import JsonValue
from starlette.concurrency import run_in_threadpool

from partisim.errors import BatchNotFound, ParamsError
from partisim.fleet.advice import NO_ACTIVE_WORKERS, no_worker_hints, queued_without_workers
from partisim.listen.guards import JsonRefused, loads_json
from partisim.protocol import BatchInfo, ChartBatch, ChartData, Submitted
from partisim.serve.queue.etapa6 import parse_priority
from partisim.serve.queue.specs import (
    MAX_REPEAT,
    MAX_TASKS,
    MAX_THREADS,
    IntValues,
    parse_engine_list,
    parse_int_values,
    positive_int,
    step_warnings,
    sweep,
)
from partisim.serve.queue.task import TaskSpec, TimeStats, new_batch_id
from partisim.serve.results.charts import chart_parts
from partisim.serve.results.physics import physics_line, result_warnings
from partisim.serve.results.statistics import pool
from partisim.serve.web.context import ServeState, state_of
from partisim.serve.web.live import HEARTBEAT_S, live_feed
from partisim.serve.web.responses import error_response, model_response
from partisim.sim.numbers import parse_number

__all__ = [
    "router",
    "chart_data",
    "parse_sweep_form",
]

log = logging.getLogger(__name__)

#: what the browser waits before reconnecting by itself (sent as ``retry:``)
RECONNECT_MS = 1000

_ASSETS = {
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "viewer.css": "text/css; charset=utf-8",
    "viewer.js": "text/javascript; charset=utf-8",
}
#: sweep form fields, and the parameter names whose errors belong to each
_FORM_FIELDS = {
    "engines": ("engines", "benchmark", "engine"),
    "particles": ("particles", "NUM_PARTICULAS"),
    "steps": ("steps", "NUM_PASOS"),
    "seeds": ("seeds", "seed", "SEMILLA"),
    "repeat": ("repeat",),
    "threads": ("threads",),
    "dt": ("dt", "DT", "max_speed"),  # max_speed*dt too large: the form's dt is to blame
    "width": ("width", "ANCHO_MUNDO"),
    "height": ("height", "ALTO_MUNDO"),
}
_SWEEP_KEYS = ("engines", "particles", "steps", "seeds", "repeat", "threads", "priority", "dt", "width", "height")
#: the form's names of the parameters, for its error messages
_FORM_NAMES = {
    "NUM_PARTICULAS": "partículas",
    "NUM_PASOS": "pasos",
    "SEMILLA": "semillas",
    "DT": "dt",
    "ANCHO_MUNDO": "ancho",
    "ALTO_MUNDO": "alto",
}
#: the form's one-number fields -> the parameter each fixes for every task of the sweep
_FIXED_FIELDS = {"dt": ("DT", "dt"), "width": ("ANCHO_MUNDO", "ancho"), "height": ("ALTO_MUNDO", "alto")}

router = APIRouter()


# -- state shared by every open page --------------------------------------------------


@dataclass
class _Cache:
    """Last computed chart data, so several open pages cost one set of queries."""

    generation: int = 0  # bumped when a task becomes final: the chart data may be old
    chart_store: _ChartStore = field(default_factory=lambda: _ChartStore())  # noqa: PLW0108 (defined below)


def _cache(state: ServeState) -> _Cache:
    cache = state.caches.get("dashboard")
    if not isinstance(cache, _Cache):
        cache = state.caches["dashboard"] = _Cache()
        # a task became final (done, failed, cancelled): the cached state is old
        state.scheduler.add_listener(lambda _task_id: _invalidate(cache))
    return cache


def _invalidate(cache: _Cache) -> None:
    cache.generation += 1


# -- charts ---------------------------------------------------------------------------


@dataclass
class _ChartStore:
    """Per-batch sums of the successful results, read again only for the batches whose
    success count changed, and only after a task became final."""

    generation: int = -1
    success: int = 0
    infos: list[BatchInfo] = field(default_factory=list)
    rows: dict[str, tuple[int, list[TimeStats]]] = field(default_factory=dict)
    batches: list[ChartBatch] = field(default_factory=list)
    #: per batch (only those with any), successful runs of workers that are not partisim
    unverifiable: dict[str, int] = field(default_factory=dict)


def _chart_store(serve: ServeState, *, force: bool = False) -> _ChartStore:
    cache = _cache(serve)
    store = cache.chart_store
    if store.generation == cache.generation and not force:
        return store
    generation = cache.generation
    infos = serve.queue.reads.batches(limit=1_000_000)
    stale = [b.batch for b in infos if store.rows.get(b.batch, (-1, []))[0] != b.success]
    fresh: dict[str, list[TimeStats]] = defaultdict(list)
    for st in serve.queue.reads.time_stats(stale) if stale else []:
        fresh[st.batch].append(st)
    changed = set(stale)
    rows = {b.batch: (b.success, fresh[b.batch] if b.batch in changed else store.rows[b.batch][1]) for b in infos}
    # of a batch that did not change, the count read before
    unverifiable = {b: n for b, n in store.unverifiable.items() if b not in changed}
    unverifiable.update(serve.queue.reads.unverifiable(stale) if stale else {})
    batches = [
        ChartBatch(
            batch=b.batch,
            created_at=b.created_at,
            results=sum(st.n for st in rows[b.batch][1]),
            pending=b.queued + b.running,
        )
        for b in infos
        if rows[b.batch][1]
    ]
    new = _ChartStore(generation, sum(b.success for b in infos), infos, rows, batches, unverifiable)
    cache.chart_store = new
    return new


def chart_data(serve: ServeState, batch: str | None = None, *, contended: bool = False) -> ChartData:
    """Chart data of one batch (``"latest"``: the newest with results) or of every batch
    (None): mean and standard deviation per engine x size x configuration, pooled from
    per-batch sums that SQLite computes, with the style of each line and bar.

    The time chart shows every run (a point with runs measured on a busy machine says how
    many); the speed-ups leave those runs out and count them, unless ``contended``.

    Raises `BatchNotFound` for a batch the queue never had."""
    store = _chart_store(serve)
    if batch not in (None, "latest") and batch not in store.rows:
        if not serve.queue.batch_exists(batch):
            raise BatchNotFound(batch)
        store = _chart_store(serve, force=True)  # queued after the last read
    latest = store.batches[0].batch if store.batches else None
    chosen = latest if batch == "latest" else batch
    if chosen is None:
        stats = [st for _, found in store.rows.values() for st in found]
    else:
        stats = store.rows.get(chosen, (0, []))[1]
    every = pool(stats, contended=True)
    pooled = every if contended else pool(stats, contended=False)
    parts = chart_parts(every.groups, pooled.groups)
    warnings = result_warnings(stats)
    dropped = sum(store.unverifiable.values()) if chosen is None else store.unverifiable.get(chosen, 0)
    if dropped:
        runs = "1 ejecución no verificable queda" if dropped == 1 else f"{dropped} ejecuciones no verificables quedan"
        warnings.append(
            f"{runs} fuera de estas cifras: las hicieron workers que no son partisim (sin motor ni checksum); "
            "véalas con partisim results"
        )
    return ChartData(
        success=store.success,
        batch=chosen,
        latest=latest,
        batches=store.batches,
        varied=parts.varied,
        series=parts.series,
        speedup=parts.speedup,
        physics=physics_line(stats),
        warnings=warnings,
        contended_left_out=pooled.left_out,
        contended_shown=contended,
    )


# -- sweeps ---------------------------------------------------------------------------


def _text(value: JsonValue, what: str) -> str:
    """Accept ``"100,200"``, ``[100, 200]`` or a single number for a list field."""
    if isinstance(value, bool):
        raise ParamsError(f"{what}: valor inválido {value!r}")
    if isinstance(value, (int, str)):
        return str(value)
    if isinstance(value, list) and len(value) > MAX_TASKS:  # before joining a long list into text
        raise ParamsError(f"{what}: {len(value)} valores (máximo {MAX_TASKS} tareas por envío)")
    if isinstance(value, list) and all(isinstance(v, (int, str)) and not isinstance(v, bool) for v in value):
        return ",".join(str(v) for v in value)
    raise ParamsError(f"{what}: use una lista de valores o un texto como 100,200 o 1-10")


def _form_field(exc: ParamsError, default: str | None) -> str | None:
    """The form field of the parameter the error names (`ParamsError.field`)."""
    for form_field, keys in _FORM_FIELDS.items():
        if exc.field in keys:
            return form_field
    return default


def _count(value: JsonValue) -> JsonValue:
    """A whole number typed as text is that number ("-1" is then out of range, not
    "no es un número"); anything else is left for `sweep` to judge."""
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,9}\s*", value):
        return int(value)
    return value


def _fixed(field: str, value: JsonValue) -> dict[str, JsonValue]:
    """One of the form's optional one-number fields (dt, width, height) -> the fixed
    parameter of the sweep; a decimal comma or point ("0,05" reads as 0.05), as the CLI."""
    alias, what = _FIXED_FIELDS[field]
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    if isinstance(value, str):
        try:
            value = parse_number(value)
        except ValueError:
            raise ParamsError(f"{what}: debe ser un número, como 0,1 (recibido {value!r})", field=alias) from None
    return {alias: value}


def parse_sweep_form(body: JsonValue) -> list[TaskSpec]:
    """A sweep request -> task specs, validated by the queue's own expansion."""
    if not isinstance(body, dict):
        raise ParamsError("el cuerpo debe ser un objeto JSON con engines, particles, steps y seeds")
    unknown = [k for k in body if k not in _SWEEP_KEYS]
    if unknown:
        raise ParamsError(f"clave desconocida {unknown[0]!r}; válidas: {', '.join(_SWEEP_KEYS)}")
    current: str | None = "engines"
    try:
        engines = parse_engine_list(_text(body.get("engines", ""), "motores"), "motores")
        lists: dict[str, IntValues] = {}
        for current, what, default in (
            ("particles", "partículas", None),
            ("steps", "pasos", None),
            ("seeds", "semillas", "42"),
        ):
            raw = body.get(current, default)
            if raw is None:
                raise ParamsError(f"{what}: indique al menos un valor")
            lists[current] = parse_int_values(_text(raw, what), what)
        current = None  # from here on: the sweep as a whole, or one parameter
        fixed = {k: v for key in _FIXED_FIELDS for k, v in _fixed(key, body.get(key)).items()}
        # checked here as `sweep` would check them first, so the numbers reach it typed
        repeat = positive_int(_count(body.get("repeat", 1)), "--repeat", high=MAX_REPEAT)
        threads = positive_int(_count(body.get("threads", 1)), "--threads", high=MAX_THREADS)
        specs = sweep(
            engines,
            lists["particles"],
            lists["steps"],
            lists["seeds"],
            repeat=repeat,
            threads=threads,
            params=fixed,
            names=_FORM_NAMES,
        )
        if body.get("priority") not in (None, "", 0):
            level = parse_priority(body["priority"], "prioridad")
            specs = [dataclasses.replace(spec, priority=level) for spec in specs]
    except ParamsError as exc:
        if exc.field == "priority":
            raise ParamsError(exc.message, field="priority") from None
        for flag, form_field, label in (("--repeat", "repeat", "repeticiones"), ("--threads", "threads", "hilos")):
            if exc.message.startswith(flag):
                raise ParamsError(exc.message.replace(flag, label, 1), field=form_field) from None
        raise ParamsError(exc.message, field=_form_field(exc, current)) from None
    return specs


# -- routes ---------------------------------------------------------------------------


def _asset(name: str) -> str:
    return resources.files("partisim.serve.web").joinpath("static").joinpath(name).read_text(encoding="utf-8")


def _checklist(request: Request) -> str:
    """The CLI's "Qué revisar" list for when no worker answers, as HTML list items."""
    config = getattr(request.app.state, "config", None)
    hints = no_worker_hints(getattr(config, "path", None))
    return "".join(f"<li>{html.escape(hint)}</li>" for hint in hints)


@router.get("/", include_in_schema=False)
async def page(request: Request) -> Response:
    text = _asset("dashboard.html").replace("<!--no-workers-checklist-->", _checklist(request))
    return Response(
        text.replace("<!--no-active-workers-->", NO_ACTIVE_WORKERS),
        media_type="text/html; charset=utf-8",
        headers={"Cache-Control": "no-cache"},
    )


@router.get("/static/{name}", include_in_schema=False)
async def asset(name: str) -> Response:
    media_type = _ASSETS.get(name)
    if media_type is None:
        return error_response(404, f"archivo desconocido: {name}")
    return Response(_asset(name), media_type=media_type, headers={"Cache-Control": "no-cache"})


async def _events(request: Request) -> AsyncIterator[str]:
    serve = state_of(request)
    feed = live_feed(serve)
    yield f"retry: {RECONNECT_MS}\n\n"
    async with feed.subscribe():
        seen = feed.version
        yield feed.snapshot_event()
        while not serve.notifier.closed and not await request.is_disconnected():
            if not await feed.wait(seen, HEARTBEAT_S):
                yield feed.heartbeat_event()
            elif feed.version > seen:
                event, seen = feed.update_event(seen), feed.version
                yield event


@router.get("/api/events", include_in_schema=False)
async def events(request: Request) -> StreamingResponse:
    """Server-Sent Events: one ``snapshot``, then an ``update`` with the sections that
    changed (at most every `live.PUSH_INTERVAL_S`), ``heartbeat`` when nothing did."""
    return StreamingResponse(
        _events(request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/api/charts")
async def charts(request: Request) -> Response:
    """Chart data: ``?batch=latest`` (the newest batch with results), ``?batch=<id>``,
    or every batch (no ``batch``, or ``batch=todos``). ``?contended=1`` shows the runs
    measured on a busy machine too (left out by default)."""
    raw = request.query_params.get("batch") or None
    batch = None if raw in (None, "todos", "all") else raw
    shown = request.query_params.get("contended", "") in ("1", "true", "si", "sí")
    try:
        data = await run_in_threadpool(partial(chart_data, contended=shown), state_of(request), batch)
    except BatchNotFound as exc:
        return error_response(404, exc.message, "batch")
    return model_response(data)


@router.post("/api/sweeps", status_code=201)
async def submit_sweep(request: Request) -> Response:
    """Queue a sweep (engines x particles x steps x seeds) as one batch."""
    try:
        body = loads_json(await request.body())
    except JsonRefused as exc:
        return error_response(422, f'{exc}; se espera {{"engines", "particles", "steps", "seeds"}}')
    try:
        # a large sweep takes a while to validate: keep the event loop free
        specs = await run_in_threadpool(parse_sweep_form, body)
    except ParamsError as exc:
        return error_response(422, exc.message, exc.field)
    advice = await run_in_threadpool(step_warnings, specs)
    serve = state_of(request)
    batch, ids = await run_in_threadpool(serve.queue.enqueue, specs, new_batch_id())
    serve.scheduler.wake()
    warning = queued_without_workers(len(ids)) if serve.executor.active_members() == 0 else None
    return model_response(Submitted(batch=batch, ids=ids, count=len(ids), warning=warning, warnings=advice), 201)
