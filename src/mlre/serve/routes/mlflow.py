"""MLflow's scoring protocol: ``POST /invocations`` as ``mlflow models serve`` takes it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers

from mlre.serve import protocol
from mlre.serve.asgi import content_type
from mlre.serve.protocol import BadRequest
from mlre.serve.refusals import Refused
from mlre.serve.routes.common import ServiceDep, answer_headers, check_predict_key, predict_frame
from mlre.serve.service import Service

router = APIRouter(tags=["mlflow"])


@router.post("/invocations")
async def invocations(request: Request, service: ServiceDep) -> Response:
    return await answer_invocations(service, await request.body(), request.headers)


async def answer_invocations(service: Service, body: bytes, headers: Headers) -> JSONResponse:
    """The MLflow answer to a JSON (``dataframe_split``, ``dataframe_records``, ``instances``,
    ``inputs``) or CSV body."""
    check_predict_key(service, headers)
    ctype = content_type(headers)
    if ctype == "text/csv":
        frame = _csv(body)
    elif ctype == "application/json":
        frame = protocol.mlflow_frame(protocol.parse_json(body))
    else:
        raise Refused(
            415, f"content type {ctype!r} is not supported: use application/json or text/csv"
        )
    answer = await predict_frame(service, headers, frame)
    out = protocol.mlflow_response(answer.slot.task, answer.slot.classes, answer.output)
    return JSONResponse(out, headers=answer_headers(answer))


def _csv(body: bytes) -> Any:
    import io

    import pandas as pd

    header = body.split(b"\n", 1)[0]
    if header.count(b",") >= protocol.MAX_COLUMNS:
        raise BadRequest(f"the CSV names more than {protocol.MAX_COLUMNS:,} columns", status=413)
    try:
        frame = pd.read_csv(io.BytesIO(body))
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise BadRequest(f"the body is not a CSV table: {err}") from None
    if frame.empty:
        raise BadRequest("the CSV has no rows")
    return frame
