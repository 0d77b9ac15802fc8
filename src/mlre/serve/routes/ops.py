"""Operations: the Prometheus metrics of the service."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from mlre.serve.routes.common import ServiceDep

router = APIRouter(tags=["operations"])


@router.get("/metrics")
def metrics(service: ServiceDep) -> Response:
    return Response(service.metrics.render(), media_type="text/plain; version=0.0.4")
