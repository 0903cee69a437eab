"""The HTTP API of CONTRACT.md. Endpoints are thin: the work is in the modules they call."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.orm import Session

from app import decisions
from app.auth import Principal, authenticate
from app.domain import diff
from app.engine import RuleEngine
from app.errors import NotFound
from app.events import FINNISH_TIME, read_event
from app.models import Role
from app.routing import outcome, trace
from app.ruleset import AttributeSpec, Condition, Rules, RuleSet
from app.schemas import (
    AttributeOut,
    DecisionOut,
    DecisionPage,
    DecisionQuery,
    EventIn,
    EventTypeOut,
    Health,
    RulesetDiffOut,
    RulesetOut,
    SimulationOut,
    Texts,
    TraceEntry,
    UnitInfo,
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
    with request.app.state.read_sessions() as session:
        return authenticate(session, authorization)


# The two below do no I/O: async, so FastAPI does not hand them to a worker thread.
async def _rules(request: Request) -> Rules:
    rules: Rules = request.app.state.rules
    return rules


async def _engine(request: Request) -> RuleEngine:
    engine: RuleEngine = request.app.state.engine
    return engine


ReadSessionDep = Annotated[Session, Depends(_read_session, scope="function")]
WriteTransactionDep = Annotated[WriteTransaction, Depends(_write_transaction)]
PrincipalDep = Annotated[Principal, Depends(_principal)]
RulesDep = Annotated[Rules, Depends(_rules)]
EngineDep = Annotated[RuleEngine, Depends(_engine)]


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
def post_event(
    body: EventIn,
    request: Request,
    response: Response,
    principal: PrincipalDep,
    transaction: WriteTransactionDep,
    rules: RulesDep,
    engine: EngineDep,
) -> DecisionOut:
    """Route an event: the decision the plan prescribes, stored once per (client, event_id)."""
    principal.require(Role.integration)
    event = read_event(body, rules, pseudonym_key=request.app.state.pseudonym_key)
    fingerprint = decisions.request_fingerprint(body, event.customer_pseudonym)
    with transaction() as session:  # committed here, before the response
        decision, created = decisions.submit(
            session, client=principal.name, event=event, fingerprint=fingerprint, engine=engine, registry=rules.registry
        )
    if created:
        log.info(
            "decision %s: event_type=%s rule=%s ruleset=%s handler=%s client=%s",
            decision["decision_id"],
            event.event_type.code,
            decision["rule"]["id"],
            decision["rule"]["ruleset"],
            decision["handler"]["unit"],
            principal.name,
        )
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/v1/decisions/{decision['decision_id']}"
    _stamp(response, decision)
    return DecisionOut.model_validate(decision)


@router.get("/v1/decisions/{decision_id}", tags=["decisions"], responses=problem_responses(404))
def get_decision(decision_id: str, response: Response, principal: PrincipalDep, session: ReadSessionDep) -> DecisionOut:
    """One decision, if this key may see it (404 otherwise, so existence does not leak)."""
    decision = decisions.get_decision(session, principal, decision_id)
    _stamp(response, decision)
    return DecisionOut.model_validate(decision)


@router.get("/v1/decisions", tags=["decisions"])
def list_decisions(
    principal: PrincipalDep,
    session: ReadSessionDep,
    filters: Annotated[DecisionQuery, Query()],
) -> DecisionPage:
    """The decision log, newest first, within what this key may see."""
    items, next_cursor = decisions.list_decisions(session, principal, filters)
    return DecisionPage(items=[DecisionOut.model_validate(d) for d in items], next_cursor=next_cursor)


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
