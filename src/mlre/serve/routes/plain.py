"""Plain JSON records: ``POST /predict`` answers labels, probabilities, version, role and
warnings."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers

from mlre.serve import protocol
from mlre.serve.routes.common import ServiceDep, answer_headers, check_predict_key, predict_frame
from mlre.serve.service import Service

router = APIRouter(tags=["plain"])


@router.post("/predict")
async def predict(request: Request, service: ServiceDep) -> Response:
    return await answer_predict(service, await request.body(), request.headers)


async def answer_predict(service: Service, body: bytes, headers: Headers) -> JSONResponse:
    """The answer to a body of JSON records (``[{"age": 39, ...}]``)."""
    check_predict_key(service, headers)
    frame = protocol.records_frame(protocol.parse_json(body))
    answer = await predict_frame(service, headers, frame)
    return JSONResponse(
        {
            "model": service.name,
            "version": answer.slot.version,
            "role": answer.role,
            "request_id": answer.request_id,
            "predictions": protocol.records_response(
                answer.slot.task, answer.slot.classes, answer.output
            ),
            "warnings": answer.warnings,
        },
        headers=answer_headers(answer),
    )
