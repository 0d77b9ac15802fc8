"""What the routers share: the service and the API key as FastAPI dependencies, typed JSON
bodies read once the key checks out, and the prediction endpoints' common steps."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, TypeVar

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers

from mlre.serve.asgi import content_type
from mlre.serve.protocol import BadRequest, parse_json
from mlre.serve.refusals import Refused
from mlre.serve.service import Service
from mlre.serve.slots import Answer

API_KEY_HEADER = "x-api-key"
REQUEST_KEY_HEADER = "x-request-key"


async def get_service(request: Request) -> Service:
    """The service the app serves."""
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]

api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,  # require_key answers a missing key itself, as a wrong one
    description="the service's API key (`--api-key-file` or `MLRE_API_KEY`); state changes need it",
)


def key_name(service: Service, given: str | None) -> str | None:
    """The name of the API key ``given`` is, or None. Every key is compared, each in constant
    time: how much of a guess matches, or which key it nearly is, must not show in the time
    of the answer."""
    found = None
    for name, key in service.config.keys().items():
        if hmac.compare_digest((given or "").encode("utf-8"), key.encode("utf-8")):
            found = name
    return found


async def require_key(
    service: ServiceDep,
    request: Request,
    given: Annotated[str | None, Security(api_key_header)],
) -> str:
    """The actor of a state change: the name of its API key, once it checks out (403 when the
    service has no key, 401 for a missing or wrong one). A body must be JSON (415 otherwise:
    no form a browser can post from another site changes anything)."""
    if request.headers.get("content-type") and content_type(request.headers) != "application/json":
        raise Refused(415, "state changes take a JSON body (Content-Type: application/json)")
    if not service.config.keys():
        raise Refused(403, "this service was started without an API key: state changes are off")
    name = key_name(service, given)
    if name is None:
        raise Refused(401, "a valid API key is needed (header X-API-Key)")
    return name


def check_predict_key(service: Service, headers: Headers) -> None:
    """With ``require_key_for_predict``, a prediction needs a valid key too (401)."""
    if (
        service.config.require_key_for_predict
        and key_name(service, headers.get(API_KEY_HEADER)) is None
    ):
        raise Refused(
            401, "this service answers predictions only with a valid API key (header X-API-Key)"
        )


#: The actor of a state change; declaring it makes a route need the API key.
Actor = Annotated[str, Depends(require_key)]


async def served_model(model_name: str, service: ServiceDep) -> str:
    """The model a v2 path names, if it is the one this service serves (else 404)."""
    if model_name != service.name:
        raise Refused(404, f"unknown model {model_name!r}; this service serves {service.name!r}")
    return model_name


ServedModel = Annotated[str, Depends(served_model)]


class JsonBody(BaseModel):
    """A request body; ``usage`` shows a caller whose body does not fit what to send."""

    usage: ClassVar[str] = "send a JSON object"


BodyT = TypeVar("BodyT", bound=BaseModel)


def json_body(model: type[BodyT], *, optional: bool = False) -> Any:
    """A dependency: the request's JSON body as ``model``, read only once the API key checks
    out; malformed JSON is a 400 and a body that does not fit ``model`` a 422 naming the first
    problem and the model's ``usage``. ``optional``: an empty body is ``model()``."""
    usage = getattr(model, "usage", JsonBody.usage)

    # The body is read here, not declared as a parameter: FastAPI reads declared bodies before
    # any dependency runs, so a request without the key would be told about its body, not the
    # key; and JSON is read whatever the content type says, as on every endpoint of the service.
    async def read(request: Request, _: Actor) -> BodyT:
        raw = await request.body()
        if optional and not raw:
            return model()
        payload = parse_json(raw)
        try:
            return model.model_validate(payload)
        except ValidationError as err:
            raise BadRequest(f"{problem(err)}; {usage}", status=422) from None

    return Depends(read)


def problem(err: ValidationError) -> str:
    """The first problem of a body that failed validation, where it is and what it is."""
    errors = err.errors(include_url=False)
    first = errors[0]
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
    # pydantic names the model class where a caller sent something else than an object
    what = "Input should be a JSON object" if first["type"] == "model_type" else first["msg"]
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"{where.lstrip('.') or 'the body'}: {what}{more}"


def request_body(schema: dict[str, Any], *, required: bool = True) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of a route whose JSON body ``json_body`` reads: FastAPI
    documents only the bodies it reads itself."""
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": schema}},
        }
    }


async def run_sync(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` on a worker thread, off the event loop."""
    return await run_in_threadpool(fn, *args, **kwargs)


async def predict_frame(service: Service, headers: Headers, frame: Any) -> Answer:
    """The service's answer to a request's table (sticky canary key and request id from its
    headers)."""
    key = headers.get(REQUEST_KEY_HEADER)
    rid = headers.get("x-request-id")
    return await service.predict_async(frame, key=key, request_id=rid)


def answer_headers(answer: Answer) -> dict[str, str]:
    """The headers of a prediction's response: request id, version and role that answered."""
    return {
        "x-request-id": answer.request_id,
        "x-model-version": str(answer.slot.version),
        "x-model-role": answer.role,
    }
