"""The audit chain and the access log over HTTP, for auditors and admins."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query, Request

from app.audit import access_log, checkpoints, verification
from app.schemas import (
    AccessOut,
    AccessPage,
    AccessQuery,
    CheckpointOut,
    CheckpointQuery,
    FindingOut,
    VerificationOut,
)
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
