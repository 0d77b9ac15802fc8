"""State changes, each behind the API key: promotion, rollback, reload, true labels sent back
(``/feedback``); and what serves now (``/admin/deployment``, open to read)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from fastapi import APIRouter, Security
from pydantic import ConfigDict, Field, RootModel, StrictStr, field_validator, model_validator

from mlre.serve.refusals import Refused
from mlre.serve.routes.common import (
    Actor,
    JsonBody,
    ServiceDep,
    api_key_header,
    json_body,
    key_name,
    request_body,
    run_sync,
)
from mlre.serve.service import Service

router = APIRouter()


class PromoteBody(JsonBody):
    """A promotion: ``version`` on trial (shadow, canary with a ``share``), or champion (full)."""

    # a version, mode or reason sent as a number is read as its text, as the CLI takes them
    model_config = ConfigDict(coerce_numbers_to_str=True)
    usage: ClassVar[str] = 'send {"version": N, "mode": "shadow" | "canary" | "full", "share": 0.1}'

    version: str
    mode: str = "shadow"  # the gate names the modes it knows
    share: float = Field(0.1, strict=True, description="a canary's share of traffic, 0 to 1")
    reason: str | None = None


class RollbackBody(JsonBody):
    """A rollback of the challenger on trial, with why."""

    model_config = ConfigDict(coerce_numbers_to_str=True)
    usage: ClassVar[str] = 'send {"reason": "..."} or no body'

    reason: str | None = None


class Feedback(JsonBody):
    """The true label of one logged request."""

    request_id: StrictStr
    label: Any

    @field_validator("label")
    @classmethod
    def _not_null(cls, label: Any) -> Any:
        if label is None:
            raise ValueError("a label is needed, not null")
        return label


#: At most this many labels in one ``/feedback`` request (413 beyond).
MAX_FEEDBACK = 1_000


class FeedbackBody(RootModel[Annotated[list[Feedback], Field(min_length=1)]]):
    """One label (an object) or several (a list of them)."""

    usage: ClassVar[str] = 'send {"request_id": "...", "label": ...} or a list of them'

    @model_validator(mode="before")
    @classmethod
    def _one(cls, data: Any) -> Any:
        return [data] if isinstance(data, dict) else data


_FEEDBACK_SCHEMA = Feedback.model_json_schema()


@router.post(
    "/feedback",
    tags=["plain"],
    openapi_extra=request_body(
        {"anyOf": [_FEEDBACK_SCHEMA, {"type": "array", "items": _FEEDBACK_SCHEMA, "minItems": 1}]}
    ),
)
async def feedback(
    service: ServiceDep, _: Actor, body: Annotated[FeedbackBody, json_body(FeedbackBody)]
) -> dict[str, Any]:
    """Attach true labels to logged requests: ``{"request_id": ..., "label": ...}`` or a list
    (at most ``MAX_FEEDBACK``), written off the event loop in one transaction."""
    items = body.root
    if len(items) > MAX_FEEDBACK:
        raise Refused(413, f"{len(items):,} labels in one request; the limit is {MAX_FEEDBACK:,}")
    labels = [(i.request_id, i.label) for i in items]
    unknown = await run_sync(service.predictions.add_feedback_many, labels)
    if len(unknown) == len(items):
        raise Refused(404, f"no logged request has id {unknown[0]!r}")
    return {"accepted": len(items) - len(unknown), "unknown": unknown}


@router.get("/admin/deployment", tags=["operations"])
def deployment(
    service: ServiceDep, given: Annotated[str | None, Security(api_key_header)] = None
) -> dict[str, Any]:
    """What serves now. Why a version is not served (paths, tampering) only with the API key;
    without it, which versions are not served."""
    out = _deployment(service)
    if key_name(service, given) is None:
        out["not_served"] = {version: "not served" for version in out["not_served"]}
    return out


@router.post("/admin/reload", tags=["operations"])
def reload(service: ServiceDep, _: Actor) -> dict[str, Any]:
    service.problems.clear()
    changed = service.refresh()
    return {"changed": changed, **_deployment(service)}


@router.post(
    "/admin/rollback",
    tags=["operations"],
    openapi_extra=request_body(RollbackBody.model_json_schema(), required=False),
)
async def admin_rollback(
    service: ServiceDep,
    actor: Actor,
    body: Annotated[RollbackBody, json_body(RollbackBody, optional=True)],
) -> dict[str, Any]:
    reason = body.reason or "by hand, through the service"
    record = await run_sync(service.rollback_now, actor, reason)
    if record is None:
        raise Refused(409, f"{service.name!r} has no challenger on trial to roll back")
    return {"rolled_back": record.versions, **_deployment(service)}


@router.post(
    "/admin/promote",
    tags=["operations"],
    openapi_extra=request_body(PromoteBody.model_json_schema()),
)
async def admin_promote(
    service: ServiceDep, actor: Actor, body: Annotated[PromoteBody, json_body(PromoteBody)]
) -> dict[str, Any]:
    from mlre.serve.gate import promote

    outcome = await run_sync(
        promote,
        service.name,
        body.version,
        body.mode,
        share=body.share,
        actor=actor,
        reason=body.reason or "",
        policy=service.config.deploy,
        predictions=service.predictions,
        audit=service.audit,
    )
    await run_sync(service.refresh)  # loads the new version or starts its shadow process
    return {"promoted": outcome.to_dict(), **_deployment(service)}


def _deployment(service: Service) -> dict[str, Any]:
    state = service.state
    return {
        "model": service.name,
        "champion": state.champion.version if state.champion else None,
        "challenger": state.challenger.version if state.challenger else None,
        "mode": state.mode,
        "share": state.share,
        "not_served": service.problems,
    }
