"""The live dashboard of ``partisim serve``: the page at ``/``, its static assets, the
Server-Sent Events stream ``/api/events``, chart data ``/api/charts`` and sweeps
``POST /api/sweeps``.

The page is plain HTML, CSS and JavaScript shipped in ``orchestrator/serve/static`` (no
framework, no CDN), so it works on machines without internet. The event stream pushes
the state of the queue and the workers when it changes, coalesced to a few messages a
second and only the parts that changed (see `serve.live`).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from partisim.errors import ParamsError
from partisim.orchestrator.serve.live import HEARTBEAT_S, live_feed
from partisim.orchestrator.serve.responses import error_response, model_response
from partisim.orchestrator.serve.results import Group, group_times, speedups
from partisim.orchestrator.serve.specs import parse_engine_list, parse_int_list, sweep
from partisim.orchestrator.serve.state import ServeState, state_of
from partisim.orchestrator.serve.taskqueue import SUCCESS, TaskSpec, new_batch_id
from partisim.protocol import Submitted

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
}
#: sweep form fields, and the parameter names whose errors belong to each
_FORM_FIELDS = {
    "engines": ("engines", "benchmark", "engine"),
    "particles": ("particles", "NUM_PARTICULAS"),
    "steps": ("steps", "NUM_PASOS"),
    "seeds": ("seeds", "seed", "SEMILLA"),
    "repeat": ("repeat",),
}
_SWEEP_KEYS = ("engines", "particles", "steps", "seeds", "repeat")

router = APIRouter()


# -- state shared by every open page --------------------------------------------------


@dataclass
class _Cache:
    """Last computed chart data, so several open pages cost one set of queries."""

    charts_key: tuple[int, str] = (-1, "")
    charts: dict[str, Any] | None = None


def _cache(state: ServeState) -> _Cache:
    cache = state.caches.get("dashboard")
    if not isinstance(cache, _Cache):
        cache = state.caches["dashboard"] = _Cache()
    return cache


# -- charts ---------------------------------------------------------------------------


def _series(groups: list[Group]) -> list[dict[str, Any]]:
    several_steps = len({g.steps for g in groups}) > 1
    by_line: dict[tuple[str, int], list[Group]] = defaultdict(list)
    for g in groups:
        by_line[(g.engine, g.steps)].append(g)
    out = []
    for (engine, steps), items in sorted(by_line.items()):
        items.sort(key=lambda g: g.particles)
        out.append({
            "engine": engine,
            "steps": steps,
            "label": f"{engine} · {steps} pasos" if several_steps else engine,
            "points": [
                {"particles": g.particles, "mean": g.mean, "stdev": g.stdev, "n": g.n} for g in items
            ],
        })
    return out


def _speedups(groups: list[Group]) -> list[dict[str, Any]]:
    return [
        {"particles": u.particles, "steps": u.steps, "python": u.python_mean,
         "cython": u.cython_mean, "value": u.value}
        for u in speedups(groups)
        if u.cython_mean > 0
    ]


def chart_data(serve: ServeState) -> dict[str, Any]:
    """Mean simulation time per (engine, particles, steps) over the stored successful
    results, and the cython/python speedup where both engines ran the same size.
    Cached until the number of successful tasks changes."""
    queue = serve.queue
    cache = _cache(serve)
    newest = queue.tasks(status=SUCCESS, limit=1)
    key = (queue.counts()[SUCCESS], newest[0].id if newest else "")
    if cache.charts is None or key != cache.charts_key:
        groups = group_times(t.view() for t in queue.tasks(status=SUCCESS, limit=100_000))
        cache.charts = {
            "success": key[0],
            "series": _series(groups),
            "speedup": _speedups(groups),
        }
        cache.charts_key = key
    return cache.charts


# -- sweeps ---------------------------------------------------------------------------


def _text(value: Any, what: str) -> str:
    """Accept ``"100,200"``, ``[100, 200]`` or a single number for a list field."""
    if isinstance(value, bool):
        raise ParamsError(f"{what}: valor inválido {value!r}")
    if isinstance(value, (int, str)):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, (int, str)) and not isinstance(v, bool) for v in value):
        return ",".join(str(v) for v in value)
    raise ParamsError(f"{what}: use una lista de valores o un texto como 100,200 o 1-10")


def _form_field(exc: ParamsError, default: str | None) -> str | None:
    """The form field of the parameter the error names (`ParamsError.field`)."""
    for form_field, keys in _FORM_FIELDS.items():
        if exc.field in keys:
            return form_field
    return default


def parse_sweep_form(body: Any) -> list[TaskSpec]:
    """A sweep request -> task specs, validated by the queue's own expansion."""
    if not isinstance(body, dict):
        raise ParamsError("el cuerpo debe ser un objeto JSON con engines, particles, steps y seeds")
    unknown = [k for k in body if k not in _SWEEP_KEYS]
    if unknown:
        raise ParamsError(f"clave desconocida {unknown[0]!r}; válidas: {', '.join(_SWEEP_KEYS)}")
    current: str | None = "engines"
    try:
        engines = parse_engine_list(_text(body.get("engines", ""), "motores"), "motores")
        lists = {}
        for current, what, default in (
            ("particles", "partículas", None),
            ("steps", "pasos", None),
            ("seeds", "semillas", "42"),
        ):
            raw = body.get(current, default)
            if raw is None:
                raise ParamsError(f"{what}: indique al menos un valor")
            lists[current] = parse_int_list(_text(raw, what), what)
        current = None  # from here on: the sweep as a whole, or one parameter
        repeat = body.get("repeat", 1)
        if isinstance(repeat, str) and repeat.strip().isdigit():
            repeat = int(repeat)
        specs = sweep(engines, lists["particles"], lists["steps"], lists["seeds"], repeat=repeat)
    except ParamsError as exc:
        if exc.message.startswith("--repeat"):
            raise ParamsError(exc.message.replace("--repeat", "repeticiones", 1), field="repeat") from None
        raise ParamsError(exc.message, field=_form_field(exc, current)) from None
    return specs


# -- routes ---------------------------------------------------------------------------


def _asset(name: str) -> str:
    return resources.files("partisim.orchestrator.serve").joinpath("static").joinpath(name).read_text(encoding="utf-8")


@router.get("/", include_in_schema=False)
async def page() -> Response:
    return Response(_asset("dashboard.html"), media_type="text/html; charset=utf-8",
                    headers={"Cache-Control": "no-cache"})


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
async def charts(request: Request) -> Any:
    return await run_in_threadpool(chart_data, state_of(request))


@router.post("/api/sweeps", status_code=201)
async def submit_sweep(request: Request) -> Any:
    """Queue a sweep (engines x particles x steps x seeds) as one batch."""
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        return error_response(422, "el cuerpo debe ser JSON: {\"engines\", \"particles\", \"steps\", \"seeds\"}")
    try:
        # a large sweep takes a while to validate: keep the event loop free
        specs = await run_in_threadpool(parse_sweep_form, body)
    except ParamsError as exc:
        return error_response(422, exc.message, exc.field)
    serve = state_of(request)
    batch, ids = await run_in_threadpool(serve.queue.enqueue, specs, new_batch_id("sweep"))
    serve.scheduler.wake()
    return model_response(Submitted(batch=batch, ids=ids, count=len(ids)), 201)
