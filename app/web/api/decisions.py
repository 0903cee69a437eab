"""The decision log over HTTP: one decision, pages and CSV, stats, chain links, overrides."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from app.decisions import overrides, reads
from app.models import Override
from app.schemas import (
    DecisionFilters,
    DecisionOut,
    DecisionPage,
    DecisionQuery,
    DecisionStats,
    LinkOut,
    OverrideIn,
    OverrideOut,
)
from app.web.api import EVERY_OPERATION
from app.web.api.schemas import problem_responses
from app.web.deps import (
    AuditReaderDep,
    CustomerDep,
    OverriderDep,
    ReaderDep,
    RulesDep,
    StatsReaderDep,
    WriteTransactionDep,
    services,
    with_customer,
)

log = logging.getLogger("reitti")

router = APIRouter(responses=EVERY_OPERATION)


def stamp_ruleset(response: Response, decision: DecisionOut) -> None:
    """Name the decision's rule set in the response headers."""
    response.headers["Reitti-Ruleset"] = decision.rule.ruleset
    response.headers["Reitti-Ruleset-Sha256"] = decision.rule.ruleset_sha256


# Before /v1/decisions/{decision_id}, which would otherwise take "stats" for an id.
@router.get("/v1/decisions/stats", tags=["decisions"])
def decision_stats(
    reader: StatsReaderDep, filters: Annotated[DecisionFilters, Query()], customer: CustomerDep
) -> DecisionStats:
    """Counts by rule, unit, municipality and month (Finnish time), and each rule's override rate."""
    return reads.read_stats(reader, with_customer(filters, customer))


@router.get("/v1/decisions/{decision_id}", tags=["decisions"], responses=problem_responses(404))
def get_decision(
    # "stats" at this place is GET /v1/decisions/stats, declared before: the schema says so.
    decision_id: Annotated[str, Path(json_schema_extra={"not": {"const": "stats"}})],
    response: Response,
    reader: ReaderDep,
) -> DecisionOut:
    """One decision, if this key may see it (404 otherwise, so existence does not leak)."""
    decision = reads.read_decision(reader, decision_id)
    stamp_ruleset(response, decision)
    return decision


@router.get(
    "/v1/decisions",
    tags=["decisions"],
    response_model=DecisionPage,
    responses={200: {"content": {"text/csv": {}}, "description": "A page; with `Accept: text/csv` every row"}},
)
def list_decisions(
    request: Request,
    reader: ReaderDep,
    filters: Annotated[DecisionQuery, Query()],
    customer: CustomerDep,
    accept: Annotated[str | None, Header()] = None,
) -> DecisionPage | StreamingResponse:
    """The decision log, newest first, within what this key may see; `Accept: text/csv` exports the selection."""
    filters = with_customer(filters, customer)
    if accept is not None and "text/csv" in accept:
        lines = reads.export(reader, filters, sessions=services(request).read_sessions)
        disposition = {"Content-Disposition": 'attachment; filename="decisions.csv"'}
        return StreamingResponse(lines, media_type="text/csv; charset=utf-8", headers=disposition)
    items, next_cursor = reads.read_page(reader, filters)
    return DecisionPage(items=list(items), next_cursor=next_cursor)


@router.get("/v1/decisions/{decision_id}/link", tags=["audit"], responses=problem_responses(404))
def get_decision_link(decision_id: str, reader: AuditReaderDep) -> LinkOut:
    """The decision's link in the audit chain; recompute `hash` as sha256(prev_hash || document)."""
    link, document = reads.read_link(reader, decision_id)
    return LinkOut(
        seq=link.seq,
        kind=link.kind,
        record_id=link.record_id,
        prev_hash=link.prev_hash,
        hash=link.hash,
        chained_at=link.chained_at,
        document=document,
        mac_key=link.mac_key,
        mac=link.mac,
    )


def _override_out(row: Override, seq: int) -> OverrideOut:
    return OverrideOut(
        override_id=row.override_id,
        decision_id=row.decision_id,
        handler=row.handler_unit,
        customership=row.customership_unit,
        reason=row.reason,
        text=row.text,
        recorded_by=row.recorded_by,
        recorded_role=row.recorded_role,
        recorded_at=row.recorded_at,
        seq=seq,
    )


@router.post(
    "/v1/decisions/{decision_id}/overrides",
    status_code=201,
    tags=["decisions"],
    responses=problem_responses(400, 404, 413),
)
def post_override(
    decision_id: str,
    body: OverrideIn,
    principal: OverriderDep,
    transaction: WriteTransactionDep,
    rules: RulesDep,
) -> OverrideOut:
    """Record that the decision was overridden in practice: a new chained record; the decision stays."""
    with transaction() as session:  # committed here, before the response
        row, seq = overrides.record_override(
            session, principal, decision_id=decision_id, body=body, registry=rules.registry
        )
    # Never the free text: it is the one place a person may have written more than they should.
    log.info("override %s of decision %s: reason=%s by %s", row.override_id, decision_id, row.reason, principal.name)
    return _override_out(row, seq)


@router.get("/v1/decisions/{decision_id}/overrides", tags=["decisions"], responses=problem_responses(404))
def list_overrides(decision_id: str, reader: ReaderDep) -> list[OverrideOut]:
    """The overrides of a decision this key may see, oldest first."""
    return [_override_out(row, seq) for row, seq in reads.read_overrides(reader, decision_id)]
