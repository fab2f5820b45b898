"""Answers of the serve API: models as strict JSON, errors as ``{"status", "error"}``."""

from __future__ import annotations

from fastapi.responses import Response
from pydantic import BaseModel

from partisim.protocol import ErrorBody

__all__ = ["error_response", "model_response"]


def model_response(model: BaseModel, status_code: int = 200) -> Response:
    """A model serialised by pydantic (finite floats by type: always strict JSON)."""
    return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")


def error_response(status_code: int, message: str, field_name: str | None = None) -> Response:
    """``field`` names the form field to mark (the dashboard's sweep form)."""
    body = ErrorBody(status="error", error=message, field=field_name)
    return Response(body.model_dump_json(exclude_none=True), status_code=status_code, media_type="application/json")
