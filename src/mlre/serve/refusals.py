"""Every refusal as data: a JSON body ``{"error": ..., "column": ...}`` with the right status.

Bad input never becomes a 500; only a model that fails on valid input does.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mlre.errors import MlreError
from mlre.serve.batching import Overloaded, TimedOut
from mlre.serve.protocol import BadRequest
from mlre.serve.service import Service
from mlre.serve.slots import NotReady

log = logging.getLogger(__name__)


class Refused(Exception):
    """An HTTP refusal with a status and a message for the caller."""

    def __init__(self, status: int, message: str, column: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.column = status, message, column


#: Seconds a shed or timed-out caller is asked to wait before retrying.
RETRY_AFTER = 1


def error_response(
    status: int, message: str, column: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The JSON answer of a refusal."""
    body: dict[str, Any] = {"error": message}
    if column is not None:
        body["column"] = column
    return JSONResponse(body, status_code=status, headers=headers)


def answer_error(service: Service, err: Exception) -> JSONResponse:
    """The answer to a request that raised ``err``: a refusal with its 4xx, or a 500."""
    if isinstance(err, (Refused, BadRequest)):
        service.metrics.rejected.labels(str(err.status)).inc()
        return error_response(err.status, err.message, err.column)
    if isinstance(err, NotReady):
        return error_response(503, str(err))
    if isinstance(err, (Overloaded, TimedOut)):  # the service's trouble, briefly: come back
        service.metrics.rejected.labels("503").inc()
        return error_response(503, str(err), headers={"Retry-After": str(RETRY_AFTER)})
    if isinstance(err, MlreError):
        return error_response(400, str(err))
    # the model failed on input that passed every check: a server error, said plainly
    log.error("prediction failed", exc_info=err)
    return error_response(
        500, f"the model failed on this request ({type(err).__name__}); see the server log"
    )


def add_error_handlers(app: FastAPI, service: Service) -> None:
    """Answer every exception a route raises on ``app`` as a JSON refusal (or a plain 500)."""

    async def refused(_: Request, err: Exception) -> JSONResponse:
        return answer_error(service, err)

    for kind in (Refused, BadRequest, NotReady, Overloaded, TimedOut, MlreError, Exception):
        app.add_exception_handler(kind, refused)

    async def invalid(_: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, RequestValidationError)
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error_response(422, f"{where or 'the body'}: {first.get('msg', 'invalid')}")

    async def http(_: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, StarletteHTTPException)
        message = {404: "no such endpoint", 405: "method not allowed here"}.get(
            err.status_code, str(err.detail)
        )
        return error_response(err.status_code, message)

    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http)
