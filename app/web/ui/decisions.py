"""The coach's pages of decisions: the list, one decision with the plan's words, overrides."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.access import roles
from app.access.users import WebUser
from app.audit import chain
from app.audit.keys import ChainKeys
from app.decisions import overrides, queries, reads
from app.decisions.reads import Reader
from app.errors import (
    InvalidBody,
    InvalidQuery,
    NotFound,
)
from app.models import ChainLink, OverrideReason
from app.rules.model import Rules
from app.schemas import DecisionOut, DecisionQuery, OverrideIn
from app.web.deps import ReadSessionDep, RulesDep, WriteTransactionDep, services
from app.web.ui.auth import DecisionReaderDep, OverriderDep, check_csrf, reader
from app.web.ui.forms import day_bounds, parse_day, unit_choices
from app.web.ui.i18n import Translator
from app.web.ui.render import PAGE_SIZE, FormDep, LanguageDep, redirect, render
from app.web.ui.route import event_type_picker

log = logging.getLogger("reitti")
router = APIRouter(prefix="/ui", include_in_schema=False)
OVERRIDE_TEXT_LIMIT: int = OverrideIn.model_json_schema()["properties"]["text"]["maxLength"]


def _link_or_none(reader: Reader, decision_id: str) -> tuple[ChainLink, str] | None:
    """The decision's link in the audit chain, or None when it has none (the page says so)."""
    try:
        return reads.read_link(reader, decision_id)
    except NotFound:  # verifying the chain names a decision without a link
        return None


@dataclass
class OverrideForm:
    """The override form as sent back with its errors, by field (`change` when neither unit was given)."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def _link_holds(link: ChainLink, document: str, keys: ChainKeys) -> bool:
    """Whether the link's hash matches the record as stored and its MAC matches the hash under the chain key."""
    return (
        chain.link_hash(link.prev_hash, document) == link.hash
        and keys.problem(link.mac_key, link.mac, link.hash) is None
    )


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
    reading = reader(request, user, session)
    decision = reads.read_decision(reading, decision_id)
    t = Translator(language, rules.registry)
    ruleset = rules.version(decision.rule.ruleset)
    customer = queries.customers_of(session, [decision_id]).get(decision_id)
    overrides = reads.read_overrides(reading, decision_id)
    show_link = user.role in roles.AUDIT
    link = _link_or_none(reading, decision_id) if show_link else None
    may_override = user.role in roles.OVERRIDE
    keeper = decision.customership.unit if decision.customership else None
    current = {"handler": decision.handler.unit, "customership": keeper}
    return render(
        request,
        "decision.html",
        user=user,
        status=status,
        d=decision,
        customer=customer,
        created="created" in request.query_params,
        sections=[(s, rules.plan_sections[s]) for s in decision.basis if s in rules.plan_sections],
        tasks=[(t.pick(ruleset.tasks[x.task]) if ruleset else x.task, x.unit) for x in decision.tasks],
        notes=[t.pick(note) for note in decision.notes],
        stays=user.municipality is not None and keeper == f"local-{user.municipality}",
        overrides=overrides,
        overridden="overridden" in request.query_params,
        override_form=(override_form or OverrideForm()) if may_override else None,
        override_units={
            name: [(u, label) for u, label in unit_choices(rules, t) if u != unit] for name, unit in current.items()
        },
        override_reasons=[(reason.value, t(f"override.reasons.{reason.value}")) for reason in OverrideReason],
        text_limit=OVERRIDE_TEXT_LIMIT,
        show_link=show_link,
        link=link,
        link_holds=link is not None and _link_holds(link[0], link[1], services(request).chain_keys),
    )


@router.get("/decisions/{decision_id}")
def decision_page(
    request: Request,
    decision_id: str,
    user: DecisionReaderDep,
    session: ReadSessionDep,
    rules: RulesDep,
    language: LanguageDep,
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
    user: OverriderDep,
    session: ReadSessionDep,
    transaction: WriteTransactionDep,
    rules: RulesDep,
    language: LanguageDep,
) -> Response:
    """Record an override as POST /v1/decisions/{id}/overrides would, with the person as `ui:<username>`."""
    check_csrf(request, form)
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


@router.get("/decisions")
def decisions_page(
    request: Request,
    user: DecisionReaderDep,
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
    after, before = day_bounds(
        parse_day(occurred_from, errors, "occurred_from", t), parse_day(occurred_to, errors, "occurred_to", t)
    )
    items: Sequence[DecisionOut] = []
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
            items, next_cursor = reads.read_page(reader(request, user, session), query)
        except (ValidationError, InvalidQuery):
            errors["form"] = t("errors.invalid_value")
    units = unit_choices(rules, t)
    older = None
    if next_cursor:
        older = "/ui/decisions?" + "&".join(f"{k}={quote(v)}" for k, v in {**filters, "cursor": next_cursor}.items())
    return render(
        request,
        "decisions.html",
        user=user,
        status=422 if errors else 200,
        items=items,
        customers=queries.customers_of(session, [d.decision_id for d in items]) if items else {},
        filters=filters,
        errors=errors,
        event_types=event_type_picker(rules, t),
        units=units,
        older=older,
        paged=cursor is not None,
    )
