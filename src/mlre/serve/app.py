"""The HTTP face of a service (FastAPI): the Open Inference Protocol v2, MLflow's
``/invocations``, plain ``/predict``, feedback, Prometheus metrics and key-guarded admin actions,
one router each (``mlre.serve.routes``).

Every refusal is data: a JSON body ``{"error": ..., "column": ...}`` with the right 4xx status.
Bad input never becomes a 500; only a model that fails on valid input does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial

from fastapi import FastAPI
from starlette.types import ASGIApp, Scope

from mlre.serve.asgi import BodyLimit, ClientBudget, Handler, PredictFastPath
from mlre.serve.batching import freeze_heap
from mlre.serve.refusals import add_error_handlers, answer_error
from mlre.serve.routes import admin, mlflow, ops, plain, v2
from mlre.serve.routes.common import key_name
from mlre.serve.service import Service
from mlre.version import __version__


class _ServiceApp(FastAPI):
    """FastAPI with mlre's own ASGI layers (``outer``) around its whole middleware stack: its
    error, telemetry and body-size layers each wrap every request and every message sent, which
    the prediction fast path has no use for (it answers its own errors)."""

    outer: Callable[[ASGIApp], ASGIApp] | None = None

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        return stack if self.outer is None else self.outer(stack)


def create_app(service: Service, *, start: bool = True, freeze: bool = False) -> FastAPI:
    """The FastAPI application around ``service`` (started with the app, stopped with it).
    ``freeze``: once started, keep the heap so far out of garbage collections (for a process
    that only serves; see ``freeze_heap``)."""
    app = _ServiceApp(
        title=f"mlre: {service.name}",
        version=__version__,
        description="Predictions from the registered model's champion (and its challenger on "
        "trial). Open Inference Protocol v2, MLflow scoring format and plain JSON records.",
        lifespan=_lifespan(service, start=start, freeze=freeze),
    )
    app.state.service = service
    add_error_handlers(app, service)
    for router in (v2.router, mlflow.router, plain.router, admin.router, ops.router):
        app.include_router(router)
    # the prediction endpoints' JSON requests, answered before FastAPI's own layers and
    # routing (same code); the body limit outside everything
    fast: dict[str, Handler] = {
        "/predict": partial(plain.answer_predict, service),
        "/invocations": partial(mlflow.answer_invocations, service),
        f"/v2/models/{service.name}/infer": partial(v2.answer_infer, service),
    }
    on_error = partial(answer_error, service)
    limit = service.config.max_body_bytes
    deploy = service.config.deploy

    def outer(inner: ASGIApp) -> ASGIApp:
        layers: ASGIApp = BodyLimit(PredictFastPath(inner, fast, on_error), limit)
        if deploy.client_rate is not None:  # outermost: a throttled body is never read
            throttled = service.metrics.throttled.labels(service.name).inc
            identify = partial(_client_of, service)
            layers = ClientBudget(layers, deploy.client_rate, deploy.client_burst, identify,
                                  throttled)  # fmt: skip
        return layers

    app.outer = outer
    return app


def _client_of(service: Service, scope: Scope) -> str:
    """Whose budget a request spends: its valid API key's name, else its address (a key that
    does not check out names nobody: guessing keys buys no fresh budget)."""
    for name, value in scope.get("headers") or []:
        if name == b"x-api-key":
            key = key_name(service, value.decode("latin-1"))
            if key is not None:
                return f"key:{key}"
    client = scope.get("client")
    return f"address:{client[0] if client else 'unknown'}"


def _lifespan(
    service: Service, *, start: bool, freeze: bool
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if start:
            service.start()
            if freeze:
                freeze_heap()
        try:
            yield
        finally:
            if start:
                service.stop()

    return lifespan
