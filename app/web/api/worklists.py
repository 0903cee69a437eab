"""The units' worklists over HTTP: open items, taking and returning them, the customership register, waiting times."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from app.models import Acknowledgement
from app.schemas import (
    AcknowledgementIn,
    AcknowledgementOut,
    CustomerRegisterOut,
    ReturnIn,
    WaitingQuery,
    WaitingTimes,
    WorklistPage,
    WorklistQuery,
)
from app.web.api import EVERY_OPERATION
from app.web.api.schemas import problem_responses
from app.web.deps import (
    ReaderDep,
    ReadSessionDep,
    RequiredCustomerDep,
    RulesDep,
    WaitingTimesDep,
    WorklistAnswererDep,
    WorklistReaderDep,
    WriteTransactionDep,
)
from app.worklists import items, reads, waiting

log = logging.getLogger("reitti")

router = APIRouter(responses=EVERY_OPERATION)


@router.get("/v1/units/{unit}/worklist", tags=["worklists"], responses=problem_responses(404))
def get_worklist(
    unit: Annotated[str, Path(max_length=64)],
    reader: WorklistReaderDep,
    query: Annotated[WorklistQuery, Query()],
    rules: RulesDep,
) -> WorklistPage:
    """The unit's open items, oldest first, each with its age: a unit's own staff, auditors and admins."""
    return reads.read_worklist(reader, unit, query, known_units=rules.registry.units)


def _answer_out(row: Acknowledgement, seq: int) -> AcknowledgementOut:
    return AcknowledgementOut(
        acknowledgement_id=row.acknowledgement_id,
        decision_id=row.decision_id,
        unit=row.unit,
        outcome=row.outcome,
        reason=row.reason,
        text=row.text,
        returned_to=row.returned_to,
        recorded_by=row.recorded_by,
        recorded_role=row.recorded_role,
        recorded_at=row.recorded_at,
        seq=seq,
    )


@router.post(
    "/v1/decisions/{decision_id}/acknowledgements",
    status_code=201,
    tags=["worklists"],
    responses={**problem_responses(404, 409, 413), 200: {"description": "Taken already: the first answer"}},
)
def post_acknowledgement(
    decision_id: str,
    body: AcknowledgementIn,
    principal: WorklistAnswererDep,
    transaction: WriteTransactionDep,
    response: Response,
) -> AcknowledgementOut:
    """The unit has taken the item: 201 the first time, 200 with the first answer after; a chained record."""
    with transaction() as session:  # committed here, before the response
        row, seq, new = items.acknowledge(session, principal, decision_id=decision_id, unit=body.unit)
    if not new:
        response.status_code = 200
    log.info("acknowledgement of decision %s by unit %s (%s)", decision_id, body.unit, principal.name)
    return _answer_out(row, seq)


@router.post(
    "/v1/decisions/{decision_id}/returns",
    status_code=201,
    tags=["worklists"],
    responses={**problem_responses(404, 409, 413), 200: {"description": "Returned already: the first answer"}},
)
def post_return(
    decision_id: str,
    body: ReturnIn,
    principal: WorklistAnswererDep,
    transaction: WriteTransactionDep,
    response: Response,
) -> AcknowledgementOut:
    """The unit returns an item that is not its own: it goes back to the sending side as a request to override."""
    with transaction() as session:
        row, seq, new = items.return_item(
            session, principal, decision_id=decision_id, unit=body.unit, reason=body.reason, text=body.text
        )
    if not new:
        response.status_code = 200
    # Never the free text.
    log.info("return of decision %s by unit %s to %s: reason=%s", decision_id, body.unit, row.returned_to, row.reason)
    return _answer_out(row, seq)


@router.get("/v1/customership", tags=["worklists"], responses=problem_responses(404))
def get_customership(reader: ReaderDep, customer: RequiredCustomerDep) -> CustomerRegisterOut:
    """The customer's holder now, since when, by which decision, and the history; the customer in the header."""
    return reads.read_customership(reader, customer)


@router.get("/v1/waiting-times", tags=["worklists"])
def get_waiting_times(
    principal: WaitingTimesDep, session: ReadSessionDep, period: Annotated[WaitingQuery, Query()]
) -> WaitingTimes:
    """Per unit, the time from decision to acknowledgement of the items taken in the period: count, median, p90."""
    return waiting.waiting_times(session, answered_after=period.answered_after, answered_before=period.answered_before)
