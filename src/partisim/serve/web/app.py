"""The app of ``partisim serve``: its routers assembled in one place, the error answers,
and the lifespan that starts and stops the scheduler (and any extra hooks, e.g. the
inbox) around the server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from partisim import __version__
from partisim.errors import ParamsError, explain_validation
from partisim.serve.web import api, dashboard, frames, metrics
from partisim.serve.web.auth import ServeAuth
from partisim.serve.web.context import ServeState
from partisim.serve.web.responses import error_response

__all__ = ["create_app"]

Hook = Callable[[], Awaitable[None]]


def create_app(
    state: ServeState,
    *,
    on_startup: Iterable[Hook] = (),
    on_shutdown: Iterable[Hook] = (),
    shutdown_grace: float = 10.0,
    close_queue: bool = True,
    token: str | None = None,
    secure_cookie: bool = False,
) -> FastAPI:
    """The serve app. Its lifespan starts the scheduler (which starts the executor) and
    the ``on_startup`` hooks, and stops them in reverse order; the queue is closed last
    (in-flight tasks record their outcome while the scheduler stops). With a ``token``,
    every route needs it (`auth.ServeAuth`); ``secure_cookie`` when served over TLS."""
    state.scheduler.add_listener(state.notifier.task_finished)
    startup, shutdown = list(on_startup), list(on_shutdown)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await state.scheduler.start()
        for hook in startup:
            await hook()
        try:
            yield
        finally:
            state.notifier.close()
            for hook in reversed(shutdown):
                await hook()
            await state.scheduler.stop(grace=shutdown_grace)
            if close_queue:
                state.queue.close()

    app = FastAPI(
        title="partisim serve",
        version=__version__,
        description="Cola de tareas de partisim: envío, estado, resultados y workers.",
        lifespan=lifespan,
    )
    app.state.serve = state

    @app.exception_handler(ParamsError)
    async def _params_error(request: Request, exc: ParamsError) -> Response:
        return error_response(422, exc.message, exc.field)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        message, field = explain_validation(exc.errors())
        return error_response(422, f"petición inválida: {message}", field)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        text = {404: "ruta no encontrada", 405: "método no permitido"}.get(exc.status_code, str(exc.detail))
        return error_response(exc.status_code, text)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # a bug must not answer starlette's English "Internal Server Error" (uvicorn
        # still logs the traceback: the middleware raises the exception again)
        return error_response(500, "error interno de partisim serve; vea su registro")

    app.include_router(api.router)
    app.include_router(frames.router)
    app.include_router(dashboard.router)
    app.include_router(metrics.router)
    metrics.install(state)
    if token:
        app.add_middleware(ServeAuth, token=token, secure_cookie=secure_cookie)
    return app
