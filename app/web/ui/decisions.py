"""The coach's pages of decisions: the list, one decision with the plan's words, overrides."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access.users import WebUser
from app.audit import access_log, chain
from app.decisions import overrides, queries
from app.errors import (
    InvalidBody,
    InvalidQuery,
    NotFound,
)
from app.models import AccessAction, ChainLink, Decision, Override, OverrideReason, Role
from app.rules.model import Note, Rules
from app.schemas import DecisionQuery, OverrideIn
from app.time import FINNISH_TIME
from app.web.deps import ReadSessionDep, RulesDep, WriteTransactionDep
from app.web.ui.auth import UserDep, check_csrf, require_role
from app.web.ui.i18n import Translator
from app.web.ui.render import PAGE_SIZE, FormDep, LanguageDep, redirect, render
from app.web.ui.route import event_type_picker

log = logging.getLogger("reitti")


router = APIRouter(prefix="/ui", include_in_schema=False)


# Who may do what, as the API's own checks say (app/api.py): record overrides, read chain links and the audit.
OVERRIDE_ROLES = (Role.coach, Role.admin)


AUDIT_ROLES = (Role.auditor, Role.admin)


OVERRIDE_TEXT_LIMIT: int = OverrideIn.model_json_schema()["properties"]["text"]["maxLength"]


def _read_decision(request: Request, session: Session, user: WebUser, decision_id: str) -> dict[str, Any]:
    """One decision the user may see (404 otherwise), recorded in the access log, a refused one too."""
    transaction = request.app.state.write_sessions
    try:
        decision = queries.get_decision(session, user.principal, decision_id)
    except NotFound:
        access_log.log_read(transaction, user.principal, AccessAction.decision, rows=0, decision_id=decision_id)
        raise
    access_log.log_read(transaction, user.principal, AccessAction.decision, rows=1, decision_id=decision_id)
    return decision


def _read_decisions(
    request: Request, session: Session, user: WebUser, query: DecisionQuery
) -> tuple[Sequence[dict[str, Any]], str | None]:
    """A page of the decisions the user may see, recorded in the access log with its filters."""
    items, next_cursor = queries.list_decisions(session, user.principal, query)
    access_log.log_read(
        request.app.state.write_sessions, user.principal, AccessAction.list, rows=len(items), filters=query
    )
    return items, next_cursor


def _customers(session: Session, ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Customer type and home municipality of decisions already read within scope (never the pseudonym)."""
    rows = session.execute(
        select(Decision.decision_id, Decision.customer_type, Decision.home_municipality).where(
            Decision.decision_id.in_(ids)
        )
    )
    return {decision_id: (kind, municipality) for decision_id, kind, municipality in rows}


def _notes(rules: Rules, version: str) -> dict[str, Note]:
    """A decision's notes by the text it stores them as, to show each in the user's language."""
    ruleset = rules.version(version)
    if ruleset is None:
        return {}
    notes = [note for rule in ruleset.rules for note in rule.notes]
    notes += [note for entry in ruleset.coach for note in entry.notes]
    return {f"{note.kind}: {note.text.en} / {note.text.fi}": note for note in notes}


def _read_overrides(
    request: Request, session: Session, user: WebUser, decision_id: str
) -> Sequence[tuple[Override, int]]:
    """A visible decision's overrides, recorded in the access log as GET /v1/decisions/{id}/overrides records them."""
    transaction = request.app.state.write_sessions
    with access_log.logged_read(transaction, user.principal, AccessAction.overrides, decision_id) as read:
        found = overrides.list_overrides(session, user.principal, decision_id)
        read.rows = len(found)
    return found


def _read_link(request: Request, session: Session, user: WebUser, decision_id: str) -> tuple[ChainLink, str] | None:
    """The decision's link in the audit chain, logged as GET /v1/decisions/{id}/link logs it; None when it has none."""
    transaction = request.app.state.write_sessions
    try:
        with access_log.logged_read(transaction, user.principal, AccessAction.link, decision_id) as read:
            found = queries.get_link(session, user.principal, decision_id)
            read.rows = 1
    except NotFound:  # a decision without a link: the page says so, and verifying the chain names it
        return None
    return found


@dataclass
class OverrideForm:
    """The override form as sent back with its errors, by field (`change` when neither unit was given)."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def _decision_page(
    request: Request,
    user: WebUser,
    session: Session,
    rules: Rules,
    language: str,
    decision_id: str,
    *,
    override_form: OverrideForm | None = None,
    status: int = 200,
) -> HTMLResponse:
    decision = _read_decision(request, session, user, decision_id)
    t = Translator(language, rules.registry)
    ruleset = rules.version(decision["rule"]["ruleset"])
    customer = _customers(session, [decision_id]).get(decision_id)
    notes = _notes(rules, decision["rule"]["ruleset"])
    overrides = _read_overrides(request, session, user, decision_id)
    show_link = user.role in AUDIT_ROLES
    link = _read_link(request, session, user, decision_id) if show_link else None
    may_override = user.role in OVERRIDE_ROLES
    current = {"handler": decision["handler"]["unit"], "customership": (decision["customership"] or {}).get("unit")}
    return render(
        request,
        "decision.html",
        user=user,
        status=status,
        d=decision,
        customer=customer,
        created="created" in request.query_params,
        sections=[(s, rules.plan_sections[s]) for s in decision["basis"] if s in rules.plan_sections],
        tasks=[(t.pick(ruleset.tasks[x["task"]]) if ruleset else x["task"], x["unit"]) for x in decision["tasks"]],
        notes=[t.pick(notes[n].text) if n in notes else n for n in decision["notes"]],
        stays=user.municipality is not None
        and (decision["customership"] or {}).get("unit") == f"local-{user.municipality}",
        overrides=overrides,
        overridden="overridden" in request.query_params,
        override_form=(override_form or OverrideForm()) if may_override else None,
        override_units={
            name: [(u, label) for u, label in _units(rules, t) if u != unit] for name, unit in current.items()
        },
        override_reasons=[(reason.value, t(f"override.reasons.{reason.value}")) for reason in OverrideReason],
        text_limit=OVERRIDE_TEXT_LIMIT,
        show_link=show_link,
        link=link,
        link_holds=link is not None and chain.link_hash(link[0].prev_hash, link[1]) == link[0].hash,
    )


@router.get("/decisions/{decision_id}")
def decision_page(
    request: Request, decision_id: str, user: UserDep, session: ReadSessionDep, rules: RulesDep, language: LanguageDep
) -> HTMLResponse:
    """One decision with the plan's own words for each section it rests on, its overrides, and for
    auditors and admins its link in the audit chain."""
    return _decision_page(request, user, session, rules, language, decision_id)


def _override_errors(
    problems: Sequence[tuple[str, str]], values: Mapping[str, str], rules: Rules, t: Translator
) -> dict[str, str]:
    """The override form's errors in the user's language, from (field, pydantic type or "service") pairs."""
    errors: dict[str, str] = {}
    for name, kind in problems:
        if name == "reason":
            message = t("errors.required") if not values.get("reason") else t("errors.invalid_value")
        elif name == "text":
            message = t("override.text_too_long", limit=OVERRIDE_TEXT_LIMIT)
        elif name in ("handler", "customership") and kind == "service" and values.get(name) in rules.registry.units:
            message = t(f"override.already_{name}")
        elif name in ("handler", "customership"):
            message = t("errors.invalid_value")
        else:  # the body's own check: neither unit given
            name, message = "change", t("override.change_required")
        errors.setdefault(name, message)
    return errors


@router.post("/decisions/{decision_id}/overrides")
def record_override(
    request: Request,
    decision_id: str,
    form: FormDep,
    user: UserDep,
    session: ReadSessionDep,
    transaction: WriteTransactionDep,
    rules: RulesDep,
    language: LanguageDep,
) -> Response:
    """Record an override as POST /v1/decisions/{id}/overrides would, with the person as `ui:<username>`."""
    check_csrf(request, form)
    require_role(user, *OVERRIDE_ROLES)
    t = Translator(language, rules.registry)
    values = {name: form.get(name, "") for name in ("handler", "customership", "reason", "text")}
    problems: list[tuple[str, str]] = []
    try:
        body = OverrideIn.model_validate(
            {"handler": values["handler"] or None, "customership": values["customership"] or None,
             "reason": values["reason"], "text": values["text"]}
        )  # fmt: skip
    except ValidationError as error:
        problems = [(str(e["loc"][0]) if e["loc"] else "", str(e["type"])) for e in error.errors()]
        # The body's own check runs only when its fields are valid: say at once what else is missing.
        if not values["handler"] and not values["customership"]:
            problems.append(("", "missing"))
    else:
        try:
            with transaction() as write:  # committed here, before the redirect
                row, _ = overrides.record_override(
                    write, user.principal, decision_id=decision_id, body=body, registry=rules.registry
                )
        except InvalidBody as invalid:
            problems = [(str(e.loc[-1]), "service") for e in invalid.errors]
    if problems:
        page = OverrideForm(values=values, errors=_override_errors(problems, values, rules, t))
        return _decision_page(request, user, session, rules, language, decision_id, override_form=page, status=422)
    # Never the free text: it is the one place a person may have written more than they should.
    log.info(
        "override %s of decision %s: reason=%s by %s", row.override_id, decision_id, row.reason, user.principal.name
    )
    return redirect(f"/ui/decisions/{quote(decision_id)}?overridden#overrides")


def _units(rules: Rules, t: Translator) -> list[tuple[str, str]]:
    """Every unit as (id, name in the user's language), by name."""
    return sorted(((u.id, t.pick(u.name)) for u in rules.registry.units.values()), key=lambda u: u[1].casefold())


def _day(value: str | None, errors: dict[str, str], name: str, t: Translator) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors[name] = t("errors.date")
        return None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), FINNISH_TIME)


def _day_bounds(start: date | None, end: date | None) -> tuple[datetime | None, datetime | None]:
    """(after, before) for the days start..end, both included, in Finnish time; None for an end not given."""
    after = _midnight(start) if start else None
    try:
        before = _midnight(end + timedelta(days=1)) if end else None
    except OverflowError:  # the last day a date can hold: nothing comes after it
        before = None
    return after, before


@router.get("/decisions")
def decisions_page(
    request: Request,
    user: UserDep,
    session: ReadSessionDep,
    rules: RulesDep,
    language: LanguageDep,
    event_type: str | None = None,
    handler: str | None = None,
    customership: str | None = None,
    occurred_from: str | None = None,
    occurred_to: str | None = None,
    cursor: str | None = None,
) -> HTMLResponse:
    """The decisions the user may see, newest first, filtered; a coach's are the municipality's."""
    t = Translator(language, rules.registry)
    filters = {
        "event_type": event_type or "",
        "handler": handler or "",
        "customership": customership or "",
        "occurred_from": occurred_from or "",
        "occurred_to": occurred_to or "",
    }
    errors: dict[str, str] = {}
    after, before = _day_bounds(
        _day(occurred_from, errors, "occurred_from", t), _day(occurred_to, errors, "occurred_to", t)
    )
    items: Sequence[dict[str, Any]] = []
    next_cursor = None
    if not errors:
        try:
            query = DecisionQuery(
                event_type=event_type or None,
                handler=handler or None,
                customership=customership or None,
                occurred_after=after,
                occurred_before=before,
                cursor=cursor or None,
                limit=PAGE_SIZE,
            )
            items, next_cursor = _read_decisions(request, session, user, query)
        except (ValidationError, InvalidQuery):
            errors["form"] = t("errors.invalid_value")
    units = _units(rules, t)
    older = None
    if next_cursor:
        older = "/ui/decisions?" + "&".join(f"{k}={quote(v)}" for k, v in {**filters, "cursor": next_cursor}.items())
    return render(
        request,
        "decisions.html",
        user=user,
        status=422 if errors else 200,
        items=items,
        customers=_customers(session, [d["decision_id"] for d in items]) if items else {},
        filters=filters,
        errors=errors,
        event_types=event_type_picker(rules, t),
        units=units,
        older=older,
        paged=cursor is not None,
    )
