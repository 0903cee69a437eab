"""The audit chain and the access log over HTTP, for auditors and admins."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request

from app.audit import access_log, checkpoints, verification
from app.schemas import AccessOut, AccessPage, AccessQuery, CheckpointOut, CheckpointQuery, FindingOut, VerificationOut
from app.web.api import EVERY_OPERATION
from app.web.deps import AuditorDep, ReadSessionDep, services

router = APIRouter(responses=EVERY_OPERATION)


@router.get("/v1/audit/verify", tags=["audit"])
def verify_chain(
    request: Request,
    principal: AuditorDep,
    session: ReadSessionDep,
    checkpoint: Annotated[CheckpointQuery, Query()],
) -> VerificationOut:
    """Walk the whole chain; name the first broken link, and check a checkpoint kept earlier if given."""
    kept = checkpoint.given()
    result = verification.verify(
        session,
        checkpoint=checkpoints.Checkpoint(**kept.model_dump()) if kept else None,
        key=services(request).checkpoint_key,
    )
    return VerificationOut(
        intact=result.intact,
        links=result.links,
        intact_up_to=result.intact_up_to,
        head_hash=result.head_hash,
        findings=[FindingOut(**asdict(finding)) for finding in result.findings],
        summary=result.summary(),
        access_entries=result.access_entries,
        access_intact_up_to=result.access_intact_up_to,
    )


@router.get("/v1/audit/checkpoints", tags=["audit"])
def export_checkpoint(request: Request, principal: AuditorDep, session: ReadSessionDep) -> CheckpointOut:
    """The head of the chain now, signed with the checkpoint key: keep it outside this service."""
    kept = checkpoints.checkpoint(session, services(request).checkpoint_key)
    return CheckpointOut(**kept.as_json())


@router.get("/v1/audit/access", tags=["audit"])
def list_access(principal: AuditorDep, session: ReadSessionDep, query: Annotated[AccessQuery, Query()]) -> AccessPage:
    """Who read which decisions, newest first."""
    items, next_cursor = access_log.list_access(session, query)
    return AccessPage(
        items=[AccessOut.model_validate(entry, from_attributes=True) for entry in items], next_cursor=next_cursor
    )


CHECKPOINT_FIELDS = ("seq", "hash", "at", "signature")


def document_checkpoint_as_one_parameter(app: FastAPI) -> None:
    """Describe GET /v1/audit/verify's checkpoint as what it is: one optional object whose four fields all come.

    FastAPI lists the four query parameters apart, each optional, and so promised that any
    subset is taken; a partial checkpoint is a 422. OpenAPI says "all or none" as one
    exploded form parameter (the same query string) holding an object that requires all four.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            operation = schema["paths"]["/v1/audit/verify"]["get"]
            apart = [p for p in operation["parameters"] if p["in"] == "query" and p["name"] in CHECKPOINT_FIELDS]
            properties = {p["name"]: _without_null(p["schema"]) for p in apart}
            operation["parameters"] = [p for p in operation["parameters"] if p not in apart] + [
                {
                    "name": "checkpoint",
                    "in": "query",
                    "required": False,
                    "style": "form",
                    "explode": True,
                    "description": CheckpointQuery.__doc__,
                    "schema": {
                        "type": "object",
                        "properties": properties,
                        "required": list(CHECKPOINT_FIELDS),
                        "additionalProperties": False,
                    },
                }
            ]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A field's schema without the `null` FastAPI allows for an optional parameter."""
    options = [option for option in schema.get("anyOf", []) if option.get("type") != "null"]
    return {**options[0], **{k: v for k, v in schema.items() if k not in ("anyOf", "default")}} if options else schema
