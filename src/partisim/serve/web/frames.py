"""Frames for the dashboard's particle viewer: ``GET /api/tasks/{id}/frames`` and
``POST /api/frames``.

The engines are deterministic and bit-identical, so serve recomputes a task's run with
its parameters and seed (on the cython engine, in a thread: the engine releases the
GIL) and records its frames (`partisim.sim.frames`); the answer carries the run's
checksum and the task's, and says whether they agree. A request may not take serve's
CPU for long: runs above `VIEW_MAX_WORK` particle-steps are refused with a message that
points to ``partisim animate``, and one recording is computed at a time (another
request waits up to `BUSY_WAIT_S`, then gets a 429). The last few answers are kept, so
playing a run again costs nothing.

Positions travel quantised to 16 bits of the box (little-endian uint16, x then y for
each drawn particle, frame after frame) in base64: 4 bytes a particle a frame.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from partisim.errors import ParamsError
from partisim.listen.guards import JsonRefused, loads_json
from partisim.serve.web.context import state_of
from partisim.serve.web.responses import error_response
from partisim.sim.engines import resolve_engine
from partisim.sim.frames import DEFAULT_FRAMES, MAX_FRAMES, QUANT, Recording, record_frames
from partisim.sim.numbers import integer
from partisim.sim.params import SimParams, parse_params

__all__ = ["router", "FramesView", "VIEW_MAX_WORK", "VIEW_ENGINE", "BUSY_WAIT_S", "frames_view"]

#: most particle-steps serve recomputes for the viewer (1-2 s of the cython engine on one core; bench/frames.py)
VIEW_MAX_WORK = 20_000_000
#: the engine that recomputes (every engine gives the same frames)
VIEW_ENGINE = "cython"
#: longest a request waits for another recording to finish before a 429
BUSY_WAIT_S = 15.0
#: answers kept for a replay
CACHE_ENTRIES = 6

router = APIRouter()


class FramesView(BaseModel):
    """The frames of one run, as the viewer draws them."""

    model_config = ConfigDict(frozen=True)

    source: Literal["task", "params"]
    task_id: str | None = None
    engine: str  # the engine that recomputed the run
    params: dict[str, Any]
    particles: int
    steps: int
    width: float
    height: float
    radius: float
    #: steps between frames (the last interval may be shorter)
    interval: int
    frames: int
    #: "all": every particle is drawn; "sample": every ``stride``-th particle by index
    mode: Literal["all", "sample"]
    stride: int
    drawn: int
    #: step, pair collisions and wall collisions up to each frame
    step: list[int]
    particle_collisions: list[int]
    wall_collisions: list[int]
    #: 16-bit positions (0..quant spans the box), base64 of little-endian uint16
    quant: int = QUANT
    positions: str
    checksum: str
    #: the task's own result, when it has one, and whether the recomputed run agrees
    task_checksum: str | None = None
    matches: bool | None = None
    #: one Spanish line on what is drawn
    note: str


def _note(rec: Recording) -> str:
    if not rec.sampled:
        return (
            f"Se dibujan las {integer(rec.params.particles)} partículas."
            if rec.params.particles > 1
            else "Se dibuja la partícula."
        )
    return (
        f"Muestra: se dibujan {integer(rec.drawn)} de {integer(rec.params.particles)} partículas "
        f"(una de cada {rec.stride}, por índice); los contadores cuentan todas."
    )


def frames_view(rec: Recording, *, task_id: str | None = None, task_checksum: str | None = None) -> FramesView:
    """The wire form of a recording."""
    data = rec.positions.astype("<u2", copy=False).tobytes()
    return FramesView(
        source="task" if task_id is not None else "params",
        task_id=task_id,
        engine=rec.engine,
        params=rec.params.to_api(),
        particles=rec.params.particles,
        steps=rec.params.steps,
        width=rec.params.width,
        height=rec.params.height,
        radius=rec.params.radius,
        interval=rec.interval,
        frames=rec.frames,
        mode="sample" if rec.sampled else "all",
        stride=rec.stride,
        drawn=rec.drawn,
        step=rec.steps,
        particle_collisions=rec.particle_collisions,
        wall_collisions=rec.wall_collisions,
        positions=base64.b64encode(data).decode("ascii"),
        checksum=rec.result.checksum,
        task_checksum=task_checksum,
        matches=None if task_checksum is None else task_checksum == rec.result.checksum,
        note=_note(rec),
    )


@dataclass
class _Recorder:
    """One recording at a time, and the last few answers."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    cache: OrderedDict[str, bytes] = field(default_factory=OrderedDict)


def _recorder(request: Request) -> _Recorder:
    caches = state_of(request).caches
    found = caches.get("frames")
    if not isinstance(found, _Recorder):
        found = caches["frames"] = _Recorder()
    return found


def _frames_count(raw: object) -> int:
    if raw is None or raw == "":
        return DEFAULT_FRAMES
    if isinstance(raw, bool):
        raise ParamsError(f"frames debe ser un número entero entre 2 y {MAX_FRAMES}", field="frames")
    try:
        value = int(raw) if isinstance(raw, (int, str)) else None
    except ValueError:
        value = None
    if value is None or not 2 <= value <= MAX_FRAMES:
        raise ParamsError(f"frames debe ser un número entero entre 2 y {MAX_FRAMES} (recibido {raw!r})", field="frames")
    return value


def _check_size(params: SimParams) -> None:
    work = params.particles * params.steps
    if work > VIEW_MAX_WORK:
        raise ParamsError(
            f"la simulación es demasiado grande para el visor: {integer(params.particles)} partículas × "
            f"{integer(params.steps)} pasos = {integer(work)} partículas-paso, y el visor recalcula como mucho "
            f"{integer(VIEW_MAX_WORK)}. "
            "Para verla, use en su máquina: partisim animate (mismos parámetros) -o sim.gif",
            field="steps",
        )


async def _answer(
    request: Request, params: SimParams, frames: int, *, task_id: str | None, task_checksum: str | None
) -> Response:
    _check_size(params)
    recorder = _recorder(request)
    key = json.dumps([params.to_api(), frames, task_id, task_checksum], sort_keys=True)
    if key in recorder.cache:
        recorder.cache.move_to_end(key)
        return Response(recorder.cache[key], media_type="application/json")
    try:
        await asyncio.wait_for(recorder.lock.acquire(), BUSY_WAIT_S)
    except asyncio.TimeoutError:  # TimeoutError itself from Python 3.11 on
        response = error_response(429, "el visor está calculando otra simulación; inténtelo de nuevo en unos segundos")
        response.headers["Retry-After"] = "5"
        return response
    try:
        body = recorder.cache.get(key)  # the same run, recorded while this request waited
        if body is None:
            rec = await run_in_threadpool(record_frames, params, VIEW_ENGINE, 1, max_frames=frames)
            body = frames_view(rec, task_id=task_id, task_checksum=task_checksum).model_dump_json().encode()
    finally:
        recorder.lock.release()
    recorder.cache[key] = body
    recorder.cache.move_to_end(key)
    while len(recorder.cache) > CACHE_ENTRIES:
        recorder.cache.popitem(last=False)
    return Response(body, media_type="application/json")


@router.get("/api/tasks/{task_id}/frames")
async def task_frames(task_id: str, request: Request) -> Response:
    """The frames of a task's run, recomputed from its parameters and seed."""
    frames = _frames_count(request.query_params.get("frames"))
    task = state_of(request).queue.get(task_id)
    if task is None:
        return error_response(404, f"tarea desconocida: {task_id}")
    params = parse_params(task.params)
    checksum = task.result.checksum if task.result is not None else None
    return await _answer(request, params, frames, task_id=task_id, task_checksum=checksum or None)


@router.post("/api/frames")
async def params_frames(request: Request) -> Response:
    """The frames of a run given by its parameters (the dashboard's form):
    ``{"params": {"NUM_PARTICULAS": 100, ...}, "benchmark"?: ..., "frames"?: N}``."""
    try:
        body = loads_json(await request.body() or b"{}")
    except JsonRefused as exc:
        return error_response(422, f'el cuerpo debe ser JSON: {{"params": {{...}}, "frames": N}} ({exc})')
    if not isinstance(body, dict):
        return error_response(422, 'el cuerpo debe ser un objeto JSON: {"params": {...}, "frames": N}')
    if body.get("benchmark") is not None:
        resolve_engine(body["benchmark"])  # a typo is refused; every engine gives the same frames
    raw = body.get("params") or {}
    if not isinstance(raw, dict):
        raise ParamsError("params debe ser un objeto JSON (clave: valor)", field="params")
    params = parse_params(raw)
    return await _answer(request, params, _frames_count(body.get("frames")), task_id=None, task_checksum=None)
