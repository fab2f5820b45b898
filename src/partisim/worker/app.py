"""The worker's HTTP app (the worker API of docs/arquitectura.md and the README) on FastAPI.

`create_app(settings)` assembles it: the `WorkerService`, the routes of
`worker.routes`, the error handlers and the middleware. Errors are `partisim.errors`
exceptions inside and become HTTP answers in one place, `responses.http_error`: every
error body is `{"status": ..., "error": "<mensaje>"}`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from partisim import __version__
from partisim.errors import ParamsError, PartisimError, explain_validation
from partisim.fleet import Identity, resolve_identity
from partisim.protocol import BATCH_MAX, ErrorBody
from partisim.worker import routes
from partisim.worker.middleware import BearerAuth, RequestLog, worker_body_limit
from partisim.worker.payload import request_schema
from partisim.worker.responses import REJECTED_WORDS, error_body, error_response, http_error
from partisim.worker.service import WorkerService
from partisim.worker.settings import WorkerSettings

__all__ = ["create_app", "http_error"]

log = logging.getLogger("partisim.worker")

OPEN_PATHS = frozenset({"/ping", "/health"})


def _http_message(request: Request, exc: StarletteHTTPException) -> str:
    if exc.status_code == 404:
        return f"ruta no encontrada: {request.method} {request.url.path}"
    if exc.status_code == 405:
        return f"método {request.method} no permitido en {request.url.path}"
    return str(exc.detail)


def _handle_errors(app: FastAPI, service: WorkerService) -> None:
    """Every error becomes a JSON answer here, and nowhere else."""

    async def partisim_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PartisimError)
        return error_response(exc, service, getattr(request.state, "task_id", None))

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_response(ParamsError(explain_validation(exc.errors())[0]), service)

    async def http_exception(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        body = ErrorBody(status=REJECTED_WORDS.get(exc.status_code, "error"), error=_http_message(request, exc))
        return error_body(body, exc.status_code, getattr(exc, "headers", None))

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("error interno en %s %s", request.method, request.url.path)
        return error_body(ErrorBody(status="error", error="error interno del worker; vea su registro"), 500)

    app.add_exception_handler(PartisimError, partisim_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_exception)
    app.add_exception_handler(Exception, unexpected)


def _document_task_body(app: FastAPI, schema: dict[str, Any]) -> None:
    """The task routes read their body themselves: its schema (with this worker's
    limits) goes into the app's OpenAPI document (FastAPI's documented way to extend it)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            body = {"required": True, "content": {"application/json": {"schema": schema}}}
            for path in routes.TASK_ROUTES:
                document["paths"][path]["post"]["requestBody"] = body
            batch = {
                "type": "object",
                "required": ["tasks"],
                "additionalProperties": False,
                "properties": {"tasks": {"type": "array", "minItems": 1, "maxItems": BATCH_MAX, "items": schema}},
            }
            document["paths"]["/execute/batch"]["post"]["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": batch}},
            }
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: WorkerSettings, *, identity: Identity | None = None, port: int | None = None) -> FastAPI:
    """The worker app. `port` is the one actually bound (for `--port 0`)."""
    port = settings.port if port is None else port
    if identity is None:
        identity = resolve_identity(
            settings.host,
            port,
            worker_id=settings.worker_id,
            config_path=settings.config_path,
            config_explicit=settings.config_explicit,
        )
    service = WorkerService(settings, identity, port)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    # redirect_slashes off: "/execute/" is not a path of the contract (a 404, not a redirect)
    app = FastAPI(
        title=f"partisim worker {identity.worker_id}",
        version=__version__,
        lifespan=lifespan,
        redirect_slashes=False,
        description="Servicio worker de partisim: ejecuta simulaciones de colisiones de partículas.",
    )
    app.state.service = service
    _handle_errors(app, service)
    app.include_router(routes.router)
    _document_task_body(app, request_schema(settings.limits))

    # Each add_middleware wraps what is already there, so the last one added runs first:
    # RequestLog (sees everything), then BearerAuth (before any body is read), then BodyLimit.
    app.add_middleware(
        worker_body_limit, max_bytes=settings.limits.max_body_bytes, on_refused=service.metrics.request_refused
    )
    app.add_middleware(
        BearerAuth, token=settings.token, open_paths=OPEN_PATHS, on_refused=service.metrics.request_refused
    )
    app.add_middleware(RequestLog)
    return app
