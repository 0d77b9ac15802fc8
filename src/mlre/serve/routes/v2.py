"""The Open Inference Protocol v2 (KServe / Triton REST): health, metadata and inference."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers

from mlre.serve import protocol
from mlre.serve.protocol import BadRequest
from mlre.serve.routes.common import (
    ServedModel,
    ServiceDep,
    answer_headers,
    check_predict_key,
    predict_frame,
)
from mlre.serve.service import Service
from mlre.serve.slots import NotReady, Slot
from mlre.version import __version__

router = APIRouter(tags=["v2"])


@router.get("/v2/health/live")
def live() -> dict[str, bool]:
    return {"live": True}


@router.get("/v2/health/ready")
def ready(service: ServiceDep) -> Response:
    return JSONResponse({"ready": service.ready}, status_code=200 if service.ready else 503)


@router.get("/v2")
def server_metadata() -> dict[str, Any]:
    return {"name": "mlre", "version": __version__, "extensions": ["binary_tensor_data"]}


@router.get("/v2/models/{model_name}")
def model_metadata(_: ServedModel, service: ServiceDep) -> dict[str, Any]:
    name, state = service.name, service.state
    if state.champion is None:
        raise NotReady(f"no version of {name!r} is loaded")
    contract = state.champion.model.contract
    versions = [s.version for s in (state.champion, state.challenger) if s is not None]
    return {
        "name": name,
        "versions": versions,
        "platform": "mlre",
        "inputs": [
            {"name": c.name, "datatype": _v2_type(c), "shape": [-1]} for c in contract.features
        ],
        "outputs": _v2_outputs(state.champion),
        "parameters": {
            "roles": {
                "champion": state.champion.version,
                "challenger": state.challenger.version if state.challenger else None,
                "mode": state.mode,
                "share": state.share,
            },
            "not_served": service.problems,
        },
    }


@router.get("/v2/models/{model_name}/ready")
def model_ready(_: ServedModel, service: ServiceDep) -> Response:
    return JSONResponse(
        {"name": service.name, "ready": service.ready}, status_code=200 if service.ready else 503
    )


@router.post("/v2/models/{model_name}/infer")
async def infer(_: ServedModel, request: Request, service: ServiceDep) -> Response:
    return await answer_infer(service, await request.body(), request.headers)


async def answer_infer(service: Service, body: bytes, headers: Headers) -> JSONResponse:
    """The v2 inference answer to a request's body (JSON, or JSON and binary tensors)."""
    check_predict_key(service, headers)
    header = headers.get("inference-header-content-length")
    if header is not None and not header.isdigit():
        raise BadRequest("Inference-Header-Content-Length must be a number of bytes")
    frame, payload = protocol.v2_frame(body, int(header) if header is not None else None)
    answer = await predict_frame(service, headers, frame)
    out = protocol.v2_response(
        service.name,
        answer.slot.version,
        payload.get("id"),
        answer.slot.task,
        answer.slot.classes,
        answer.output,
    )
    return JSONResponse(out, headers=answer_headers(answer))


def _v2_type(column: Any) -> str:
    return {"integer": "INT64", "float": "FP64", "boolean": "BOOL"}.get(column.dtype, "BYTES")


def _v2_outputs(slot: Slot) -> list[dict[str, Any]]:
    if slot.task == "regression":
        return [{"name": "predict", "datatype": "FP64", "shape": [-1]}]
    return [
        {"name": "predict", "datatype": "BYTES", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP64", "shape": [-1, len(slot.classes or [])]},
    ]
