"""The HTTP API of CONTRACT.md. Endpoints are thin: the work is in the modules they call."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict
from datetime import date, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy import text
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app import audit, decisions
from app.auth import KnownKeys, Principal, authenticate, bearer_key
from app.domain import diff
from app.engine import RuleEngine
from app.errors import EventIdConflict, FieldError, InvalidQuery, NotFound, Unauthenticated
from app.events import FINNISH_TIME, read_event
from app.identity import InvalidIdentifier, check_identifier, pseudonymise
from app.models import AccessAction, Override, Role
from app.routing import decide, outcome, trace
from app.ruleset import AttributeSpec, Condition, Rules, RuleSet
from app.schemas import (
    AccessOut,
    AccessPage,
    AccessQuery,
    AttributeOut,
    CheckpointOut,
    CheckpointQuery,
    DecisionFilters,
    DecisionOut,
    DecisionPage,
    DecisionQuery,
    DecisionStats,
    EventIn,
    EventTypeOut,
    FindingOut,
    Health,
    LinkOut,
    OverrideIn,
    OverrideOut,
    RulesetDiffOut,
    RulesetOut,
    SimulationOut,
    Texts,
    TraceEntry,
    UnitInfo,
    VerificationOut,
    problem_responses,
)

log = logging.getLogger("reitti")
# Every API operation may answer these; each endpoint adds its own.
router = APIRouter(responses=problem_responses(401, 403, 422, 500, 503))
# Health and readiness: no key, no problem documents beyond their own.
operations = APIRouter(tags=["operations"])

WriteTransaction = Callable[[], AbstractContextManager[Session]]


def _read_session(request: Request) -> Iterator[Session]:
    with request.app.state.read_sessions() as session:
        yield session


async def _write_transaction(request: Request) -> WriteTransaction:
    # The endpoint opens its one write transaction itself, so that BEGIN, the work and
    # COMMIT run in one worker thread before the response is sent. A session opened by
    # a dependency would hold SQLite's single write lock across FastAPI's thread hops,
    # and writers waiting for it would fill the thread pool the holder needs to finish.
    factory: WriteTransaction = request.app.state.write_sessions
    return factory


def _principal(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    # A bare connection, not a session: this runs before every API call.
    with request.app.state.database.connect() as connection:
        return authenticate(connection, authorization)


async def _event_poster(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    """The caller of POST /v1/events: its key is looked up once per process, then remembered.

    The writer checks again, in the transaction that would store, that the key is not revoked.
    """
    known: KnownKeys = request.app.state.known_keys
    key = bearer_key(authorization)
    principal = known.get(key)
    if principal is None:
        principal = await run_in_threadpool(_principal, request, authorization)
        known.remember(key, principal)
    return principal


# The two below do no I/O: async, so FastAPI does not hand them to a worker thread.
async def _rules(request: Request) -> Rules:
    rules: Rules = request.app.state.rules
    return rules


async def _engine(request: Request) -> RuleEngine:
    engine: RuleEngine = request.app.state.engine
    return engine


CUSTOMER_HEADER = "Reitti-Customer-Id"


async def _customer(
    request: Request,
    customer_id: Annotated[
        str | None,
        Header(
            alias=CUSTOMER_HEADER,
            description="Only the decisions of this customer (identity code, business id or opaque id). "
            "A header, not a query parameter, so that the code never lands in an access log.",
        ),
    ] = None,
) -> str | None:
    """The pseudonym of the customer asked for; the identity code itself goes no further than here."""
    if customer_id is None:
        return None
    try:
        check_identifier(customer_id)
    except InvalidIdentifier as error:  # its message never repeats the code
        raise InvalidQuery([FieldError(("header", CUSTOMER_HEADER), str(error))]) from None
    pseudonym_key: bytes = request.app.state.pseudonym_key
    return pseudonymise(pseudonym_key, customer_id)


ReadSessionDep = Annotated[Session, Depends(_read_session, scope="function")]
WriteTransactionDep = Annotated[WriteTransaction, Depends(_write_transaction)]
PrincipalDep = Annotated[Principal, Depends(_principal)]
RulesDep = Annotated[Rules, Depends(_rules)]
EngineDep = Annotated[RuleEngine, Depends(_engine)]
CustomerDep = Annotated[str | None, Depends(_customer)]
Filters = TypeVar("Filters", bound=DecisionFilters)


def _with_customer(filters: Filters, pseudonym: str | None) -> Filters:
    """The filters with the customer of the header as its pseudonym."""
    if pseudonym is None:
        return filters
    if filters.customer_pseudonym is not None:
        message = "give the customer either here or as customer_pseudonym, not both"
        raise InvalidQuery([FieldError(("header", CUSTOMER_HEADER), message)])
    return filters.model_copy(update={"customer_pseudonym": pseudonym})


def _stamp(response: Response, decision: dict[str, Any]) -> None:
    """Name the decision's rule set in the response headers."""
    response.headers["Reitti-Ruleset"] = decision["rule"]["ruleset"]
    response.headers["Reitti-Ruleset-Sha256"] = decision["rule"]["ruleset_sha256"]


@router.post(
    "/v1/events",
    status_code=201,
    responses={
        200: {"model": DecisionOut, "description": "The same event again: the first decision"},
        **problem_responses(400, 409, 413),
    },
    tags=["events"],
)
async def post_event(
    body: EventIn,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(_event_poster)],
    rules: RulesDep,
    engine: EngineDep,
) -> DecisionOut:
    """Route an event: the decision the plan prescribes, stored once per (client, event_id)."""
    # The busiest path stays on the event loop until it stores: the key is remembered
    # (_event_poster), reading the event and deciding are computation only (the engine's
    # answers are mostly remembered; a new one takes about 0.1 ms), and the writer thread
    # stores it with the others that arrive meanwhile (app/writer.py). Each trip to a
    # worker thread cost about 0.3 ms of CPU here, more than deciding.
    principal.require(Role.integration)
    submission = _submission(request, principal, body, rules, engine)
    stored = await request.app.state.writer.store(submission, key_id=principal.key_id)
    if isinstance(stored, Unauthenticated):
        request.app.state.known_keys.forget(principal.key_id)
        raise stored
    if isinstance(stored, EventIdConflict):
        raise stored
    decision, created = stored
    if created:
        log.info(
            "decision %s: event_type=%s rule=%s ruleset=%s handler=%s client=%s",
            decision["decision_id"],
            submission.event.event_type.code,
            decision["rule"]["id"],
            decision["rule"]["ruleset"],
            decision["handler"]["unit"],
            principal.name,
        )
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/v1/decisions/{decision['decision_id']}"
    _stamp(response, decision)
    return DecisionOut.model_validate(decision)


def _submission(
    request: Request, principal: Principal, body: EventIn, rules: Rules, engine: RuleEngine
) -> decisions.Submission:
    """The event with the decision made for it, ready to store."""
    event = read_event(body, rules, pseudonym_key=request.app.state.pseudonym_key)
    fingerprint = decisions.request_fingerprint(body, event.customer_pseudonym)
    decision = decide(event, engine=engine, registry=rules.registry)
    return decisions.Submission(principal.name, event, fingerprint, decision)


# Before /v1/decisions/{decision_id}, which would otherwise take "stats" for an id.
@router.get("/v1/decisions/stats", tags=["decisions"])
def decision_stats(
    principal: PrincipalDep,
    session: ReadSessionDep,
    transaction: WriteTransactionDep,
    filters: Annotated[DecisionFilters, Query()],
    customer: CustomerDep,
) -> DecisionStats:
    """Counts by rule, unit, municipality and month (Finnish time), and each rule's override rate."""
    filters = _with_customer(filters, customer)
    stats = decisions.decision_stats(session, principal, filters)
    audit.log_read(transaction, principal, AccessAction.stats, rows=stats.total, filters=filters)
    return stats


@router.get("/v1/decisions/{decision_id}", tags=["decisions"], responses=problem_responses(404))
def get_decision(
    decision_id: str,
    response: Response,
    principal: PrincipalDep,
    session: ReadSessionDep,
    transaction: WriteTransactionDep,
) -> DecisionOut:
    """One decision, if this key may see it (404 otherwise, so existence does not leak)."""
    with audit.logged_read(transaction, principal, AccessAction.decision, decision_id) as read:
        decision = decisions.get_decision(session, principal, decision_id)
        read.rows = 1
    _stamp(response, decision)
    return DecisionOut.model_validate(decision)


@router.get(
    "/v1/decisions",
    tags=["decisions"],
    response_model=DecisionPage,
    responses={200: {"content": {"text/csv": {}}, "description": "A page; with `Accept: text/csv` every row"}},
)
def list_decisions(
    request: Request,
    principal: PrincipalDep,
    session: ReadSessionDep,
    transaction: WriteTransactionDep,
    filters: Annotated[DecisionQuery, Query()],
    customer: CustomerDep,
    accept: Annotated[str | None, Header()] = None,
) -> DecisionPage | StreamingResponse:
    """The decision log, newest first, within what this key may see; `Accept: text/csv` exports the selection."""
    filters = _with_customer(filters, customer)
    if accept is not None and "text/csv" in accept:
        start, rows = decisions.export_start(session, principal, filters)
        audit.log_read(transaction, principal, AccessAction.export, rows=rows, filters=filters)
        lines = decisions.export_csv(request.app.state.read_sessions, principal, filters, start=start)
        disposition = {"Content-Disposition": 'attachment; filename="decisions.csv"'}
        return StreamingResponse(lines, media_type="text/csv; charset=utf-8", headers=disposition)
    items, next_cursor = decisions.list_decisions(session, principal, filters)
    audit.log_read(transaction, principal, AccessAction.list, rows=len(items), filters=filters)
    return DecisionPage(items=[DecisionOut.model_validate(d) for d in items], next_cursor=next_cursor)


@router.get("/v1/decisions/{decision_id}/link", tags=["audit"], responses=problem_responses(404))
def get_decision_link(
    decision_id: str, principal: PrincipalDep, session: ReadSessionDep, transaction: WriteTransactionDep
) -> LinkOut:
    """The decision's link in the audit chain; recompute `hash` as sha256(prev_hash || document)."""
    principal.require(Role.auditor, Role.admin)
    with audit.logged_read(transaction, principal, AccessAction.link, decision_id) as read:
        link, document = decisions.get_link(session, principal, decision_id)
        read.rows = 1
    return LinkOut(
        seq=link.seq,
        kind=link.kind,
        record_id=link.record_id,
        prev_hash=link.prev_hash,
        hash=link.hash,
        chained_at=link.chained_at,
        document=document,
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
    principal: PrincipalDep,
    transaction: WriteTransactionDep,
    rules: RulesDep,
) -> OverrideOut:
    """Record that the decision was overridden in practice: a new chained record; the decision stays."""
    principal.require(Role.coach, Role.admin)
    with transaction() as session:  # committed here, before the response
        row, seq = decisions.record_override(
            session, principal, decision_id=decision_id, body=body, registry=rules.registry
        )
    # Never the free text: it is the one place a person may have written more than they should.
    log.info("override %s of decision %s: reason=%s by %s", row.override_id, decision_id, row.reason, principal.name)
    return _override_out(row, seq)


@router.get("/v1/decisions/{decision_id}/overrides", tags=["decisions"], responses=problem_responses(404))
def list_overrides(
    decision_id: str, principal: PrincipalDep, session: ReadSessionDep, transaction: WriteTransactionDep
) -> list[OverrideOut]:
    """The overrides of a decision this key may see, oldest first."""
    with audit.logged_read(transaction, principal, AccessAction.overrides, decision_id) as read:
        found = decisions.list_overrides(session, principal, decision_id)
        read.rows = len(found)
    return [_override_out(row, seq) for row, seq in found]


@router.get("/v1/audit/verify", tags=["audit"])
def verify_chain(
    request: Request,
    principal: PrincipalDep,
    session: ReadSessionDep,
    checkpoint: Annotated[CheckpointQuery, Query()],
) -> VerificationOut:
    """Walk the whole chain; name the first broken link, and check a checkpoint kept earlier if given."""
    principal.require(Role.auditor, Role.admin)
    kept = checkpoint.given()
    result = audit.verify(
        session,
        checkpoint=audit.Checkpoint(**kept.model_dump()) if kept else None,
        key=request.app.state.checkpoint_key,
    )
    return VerificationOut(
        intact=result.intact,
        links=result.links,
        intact_up_to=result.intact_up_to,
        head_hash=result.head_hash,
        findings=[FindingOut(**asdict(finding)) for finding in result.findings],
        summary=result.summary(),
    )


@router.get("/v1/audit/checkpoints", tags=["audit"])
def export_checkpoint(request: Request, principal: PrincipalDep, session: ReadSessionDep) -> CheckpointOut:
    """The head of the chain now, signed with the checkpoint key: keep it outside this service."""
    principal.require(Role.auditor, Role.admin)
    kept = audit.checkpoint(session, request.app.state.checkpoint_key)
    return CheckpointOut(**kept.as_json())


@router.get("/v1/audit/access", tags=["audit"])
def list_access(principal: PrincipalDep, session: ReadSessionDep, query: Annotated[AccessQuery, Query()]) -> AccessPage:
    """Who read which decisions, newest first."""
    principal.require(Role.auditor, Role.admin)
    items, next_cursor = audit.list_access(session, query)
    return AccessPage(
        items=[AccessOut.model_validate(entry, from_attributes=True) for entry in items], next_cursor=next_cursor
    )


def _describe(condition: Condition | None) -> str | None:
    return condition.describe() if condition else None


def _attribute(spec: AttributeSpec) -> AttributeOut:
    return AttributeOut(
        name=spec.name,
        type=spec.type.value,
        values=list(spec.values) or None,
        required=spec.required,
        required_when=_describe(spec.required_when),
        absent_means=spec.absent_means if isinstance(spec.absent_means, bool) else None,
        echo=spec.echo,
        latest=spec.latest,
    )


@router.get("/v1/event-types", tags=["registry"])
def list_event_types(principal: PrincipalDep, rules: RulesDep) -> list[EventTypeOut]:
    """Every event type, with the customer types and attributes it takes."""
    return [
        EventTypeOut(
            code=t.code,
            name=Texts(fi=t.name.fi, en=t.name.en),
            customer_types=[c.value for c in t.customer_types],
            attributes=[_attribute(spec) for spec in t.attributes.values()],
            customer_language_required_when=_describe(t.language_required_when),
        )
        for t in rules.registry.event_types.values()
    ]


@router.get("/v1/units", tags=["registry"])
def list_units(principal: PrincipalDep, rules: RulesDep) -> list[UnitInfo]:
    """Every unit a decision may name."""
    return [
        UnitInfo(id=u.id, kind=u.kind.value, municipality=u.municipality, name=Texts(fi=u.name.fi, en=u.name.en))
        for u in rules.registry.units.values()
    ]


@router.get("/v1/rulesets", tags=["registry"])
def list_rulesets(principal: PrincipalDep, rules: RulesDep) -> list[RulesetOut]:
    """Every rule-set version, its period of validity and content hash."""
    today = today_in_finland()
    return [
        RulesetOut(
            version=r.version,
            valid_from=r.valid_from,
            valid_to=r.valid_to,
            in_force_until=r.ends,
            sha256=r.sha256,
            title=Texts(fi=r.title.fi, en=r.title.en),
            rules=len(r.rules),
            in_force_now=r.in_force_on(today),
        )
        for r in rules.rulesets
    ]


def _version(rules: Rules, version: str) -> RuleSet:
    ruleset = rules.version(version)
    if ruleset is None:
        raise NotFound(f"No rule set {version}; GET /v1/rulesets lists them.")
    return ruleset


@router.post("/v1/simulate", tags=["rules"], responses=problem_responses(400, 404, 413))
def simulate(
    body: EventIn,
    request: Request,
    principal: PrincipalDep,
    rules: RulesDep,
    engine: EngineDep,
    ruleset: Annotated[str | None, Query(description="a version; default: the one in force at occurred_at")] = None,
) -> SimulationOut:
    """Decide an event under the rule set in force or a named version, with a trace; stores nothing."""
    chosen = _version(rules, ruleset) if ruleset else None
    event = read_event(body, rules, pseudonym_key=request.app.state.pseudonym_key, ruleset=chosen)
    matched = engine.matching_rules(event.ruleset, event.facts)
    decision = None
    if len(matched) == 1:
        decision = {
            "event_id": event.event_id,
            "event_type": event.event_type.code,
            "occurred_at": event.occurred_at.isoformat(),
            **outcome(event, event.ruleset.rules_by_id[matched[0]], rules.registry),
        }
    return SimulationOut(
        ruleset=event.ruleset.version,
        ruleset_sha256=event.ruleset.sha256,
        decision=decision,
        matched_rules=matched,
        trace=[TraceEntry.model_validate(entry) for entry in trace(event)],
    )


@router.get("/v1/rulesets/{before}/diff/{after}", tags=["rules"], responses=problem_responses(404))
def ruleset_diff(
    before: str, after: str, request: Request, principal: PrincipalDep, rules: RulesDep, engine: EngineDep
) -> RulesetDiffOut:
    """Every point of the input domain whose outcome differs between two versions (auditors, admins)."""
    principal.require(Role.auditor, Role.admin)
    old, new = _version(rules, before), _version(rules, after)
    cache: dict[tuple[str, str], RulesetDiffOut] = request.app.state.diffs
    key = (old.sha256, new.sha256)
    # Walking the domain twice takes seconds: once per pair of contents is enough.
    with request.app.state.diff_lock:
        if key not in cache:
            cache[key] = RulesetDiffOut.model_validate(diff(rules, old, new, engine).as_json())
    return cache[key]


@operations.get("/healthz")
def healthz() -> Health:
    """The process is alive."""
    return Health(status="ok")


@operations.get("/readyz", responses={503: {"model": Health, "description": "Not ready"}})
def readyz(request: Request) -> JSONResponse:
    """The database answers and the rules are loaded."""
    checks = {"rules": "ok" if getattr(request.app.state, "rules", None) else "not loaded"}
    try:
        with request.app.state.write_sessions() as session:
            session.execute(text("SELECT 1 FROM decisions WHERE 1 = 0"))
            if session.get_bind().dialect.name == "sqlite":
                # SQLite fails by turning unwritable (disk full, read-only mount) while reads
                # go on: rewrite the header's user_version with its own value as a write probe.
                version = int(session.execute(text("PRAGMA user_version")).scalar_one())
                session.execute(text(f"PRAGMA user_version = {version}"))
        checks["database"] = "ok"
    except Exception as error:  # noqa: BLE001 - any failure means not ready
        checks["database"] = f"unavailable ({type(error).__name__})"
    ready = all(v == "ok" for v in checks.values())
    body = Health(status="ok" if ready else "unavailable", checks=checks)
    headers = {} if ready else {"Retry-After": "5"}
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503, headers=headers)


def today_in_finland() -> date:
    """Today's date in Finland, for the rule set in force now."""
    return datetime.now(FINNISH_TIME).date()
