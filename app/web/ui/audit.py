"""The auditor's pages: the decision log searched with the API's filters and exported as CSV,
the audit chain's head, its verification and checkpoints, and the access log.

Each page lets in the roles its API counterpart lets in (auditors and admins, app.access.roles.AUDIT) and
reads through the same service functions. Reads of decisions go into the access log as the
API writes them: a search as `list`, an export as `export` (through `ui._read_decisions` and
`access_log.log_read`); the API logs neither verification nor reads of the access log, and neither
does this. A customer is searched for by identity code in a POST form only, never in a URL,
for the reason the API takes it in a header: URLs land in logs and browser histories.

Verifying the chain walks every link (about 6,000 a second), so it is an explicit action whose
answer is the page itself, rather than something each visit of the page would start.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access.identity import InvalidIdentifier, check_identifier, pseudonymise
from app.access.users import WebUser
from app.audit import access_log, chain, checkpoints, verification
from app.decisions import queries, reads
from app.errors import InvalidQuery
from app.models import AccessAction, ChainLink, Role
from app.rules.model import Rules
from app.schemas import AccessQuery, CheckpointQuery, DecisionOut, DecisionQuery
from app.web.deps import ReadSessionDep, RulesDep, services
from app.web.ui.auth import AuditorDep, check_csrf, reader
from app.web.ui.forms import day_bounds, parse_day, unit_choices
from app.web.ui.i18n import Translator
from app.web.ui.render import PAGE_SIZE, FormDep, LanguageDep, render
from app.web.ui.route import event_type_picker

log = logging.getLogger("reitti")
router = APIRouter(prefix="/ui/audit", include_in_schema=False)

# The log's filters as the search form names them: equalities, then days in Finnish time whose
# ends are both inclusive, as the API's (after, before) bounds they become.
EQUAL_FILTERS = ("event_type", "handler", "provider", "customership", "municipality", "rule_id", "ruleset")
DAY_RANGES = {
    ("decided_from", "decided_to"): ("decided_after", "decided_before"),
    ("occurred_from", "occurred_to"): ("occurred_after", "occurred_before"),
}
SEARCH_FIELDS = (*EQUAL_FILTERS, *(name for pair in DAY_RANGES for name in pair))
# Where the API's name of a filter is shown on the form.
FORM_FIELD = {
    **{bound: day for days, bounds in DAY_RANGES.items() for day, bound in zip(days, bounds, strict=True)},
    "customer_pseudonym": "customer_id",
    "cursor": "form",
    "limit": "form",
}
ACCESS_FIELDS = ("who", "role", "municipality", "action", "decision_id", "from", "to")
# Links a second that a walk of the chain verifies (bench/audit.py): to say how long it will take.
VERIFY_RATE = 6000


# --- searching and exporting the decision log ----------------------------------------------


@dataclass
class Search:
    """A search of the decision log: the form's values, the API's query made of them, or the errors."""

    values: dict[str, str]
    query: DecisionQuery | None = None
    errors: dict[str, str] = field(default_factory=dict)
    customer: str | None = None  # the pseudonym of the customer searched for (a POST only)

    def given(self) -> dict[str, str]:
        """The filters given, for the links that keep them (never the customer)."""
        return {name: value for name, value in self.values.items() if value}


def _search(
    given: Mapping[str, str], t: Translator, *, customer: str | None = None, cursor: str | None = None
) -> Search:
    """The API's DecisionQuery from the form's fields, or the fields that cannot make one."""
    search = Search(values={name: given.get(name, "") for name in SEARCH_FIELDS}, customer=customer)
    query: dict[str, Any] = {name: search.values[name] or None for name in EQUAL_FILTERS}
    for (start, end), (after, before) in DAY_RANGES.items():
        days = (
            parse_day(search.values[start], search.errors, start, t),
            parse_day(search.values[end], search.errors, end, t),
        )
        query[after], query[before] = day_bounds(*days)
    if search.errors:
        return search
    try:
        search.query = DecisionQuery.model_validate(
            {**query, "customer_pseudonym": customer, "cursor": cursor or None, "limit": PAGE_SIZE}
        )
    except ValidationError as error:
        for problem in error.errors():
            name = str(problem["loc"][0]) if problem["loc"] else "form"
            # A cursor is refused by its pattern now: said as a cursor found unknown later was.
            message = t("audit.log.bad_cursor") if name == "cursor" else t("errors.invalid_value")
            search.errors.setdefault(FORM_FIELD.get(name, name), message)
    return search


def _customer_search(request: Request, form: Mapping[str, str], t: Translator) -> Search:
    """A search for one customer: by the identity code typed, or by the pseudonym a previous page carried."""
    code, carried = form.get("customer_id", ""), form.get("customer_pseudonym", "")
    problem = None
    if code:
        try:
            check_identifier(code)
        except InvalidIdentifier:  # its message never repeats the code, but the page needs none of it
            problem = t("errors.customer_id")
        pseudonym = None if problem else pseudonymise(services(request).pseudonym_key, code)
    else:
        pseudonym = carried or None
        problem = None if pseudonym else t("errors.required")
    search = _search(form, t, customer=pseudonym, cursor=form.get("cursor"))
    if problem:
        search.errors["customer_id"] = problem
        search.query = None
    return search


def _choices(rules: Rules, t: Translator) -> dict[str, Any]:
    """The search form's options, each in the user's language where it has a name."""
    return {
        "event_types": event_type_picker(rules, t),
        "units": unit_choices(rules, t),
        "municipalities": sorted(rules.registry.municipalities.items(), key=lambda m: m[1].casefold()),
        "rule_ids": sorted({rule.id for ruleset in rules.rulesets for rule in ruleset.rules}),
        "rulesets": [ruleset.version for ruleset in rules.rulesets],
    }


def _render_log(
    request: Request, session: Session, user: WebUser, rules: Rules, language: str, search: Search
) -> HTMLResponse:
    t = Translator(language, rules.registry)
    items: Sequence[DecisionOut] = []
    next_cursor = None
    if search.query is not None and not search.errors:
        try:
            items, next_cursor = reads.read_page(reader(request, user, session), search.query)
        except InvalidQuery:  # a cursor this service did not give
            search.errors["form"] = t("audit.log.bad_cursor")
    return render(
        request,
        "audit_log.html",
        user=user,
        status=422 if search.errors else 200,
        search=search,
        items=items,
        customers=queries.customers_of(session, [d.decision_id for d in items]) if items else {},
        next_cursor=next_cursor,
        paged=search.query is not None and search.query.cursor is not None,
        **_choices(rules, t),
    )


@router.get("/decisions")
def log_page(
    request: Request, user: AuditorDep, session: ReadSessionDep, rules: RulesDep, language: LanguageDep
) -> HTMLResponse:
    """The decision log, newest first, with every filter of GET /v1/decisions but the customer."""
    t = Translator(language, rules.registry)
    search = _search(request.query_params, t, cursor=request.query_params.get("cursor"))
    return _render_log(request, session, user, rules, language, search)


@router.post("/decisions")
def customer_log_page(
    request: Request, form: FormDep, user: AuditorDep, session: ReadSessionDep, rules: RulesDep, language: LanguageDep
) -> HTMLResponse:
    """One customer's decisions: the identity code comes in the body and goes no further than its pseudonym."""
    check_csrf(request, form)
    search = _customer_search(request, form, Translator(language, rules.registry))
    return _render_log(request, session, user, rules, language, search)


def _export(request: Request, session: Session, user: WebUser, query: DecisionQuery) -> StreamingResponse:
    """The whole selection as CSV, streamed, counted in the access log before the first byte, as the API does."""
    query = query.model_copy(update={"cursor": None})
    lines = reads.export(reader(request, user, session), query, sessions=services(request).read_sessions)
    disposition = {"Content-Disposition": 'attachment; filename="decisions.csv"'}
    return StreamingResponse(lines, media_type="text/csv; charset=utf-8", headers=disposition)


@router.get("/export")
def export_log(
    request: Request, user: AuditorDep, session: ReadSessionDep, rules: RulesDep, language: LanguageDep
) -> Response:
    """The search's every row as CSV (the search page again, with its errors, when a filter is not valid)."""
    search = _search(request.query_params, Translator(language, rules.registry))
    if search.query is None:
        return _render_log(request, session, user, rules, language, search)
    return _export(request, session, user, search.query)


@router.post("/export")
def export_customer_log(
    request: Request, form: FormDep, user: AuditorDep, session: ReadSessionDep, rules: RulesDep, language: LanguageDep
) -> Response:
    """One customer's decisions as CSV; the customer comes in the body, as in the search."""
    check_csrf(request, form)
    search = _customer_search(request, {**form, "cursor": ""}, Translator(language, rules.registry))
    if search.query is None:
        return _render_log(request, session, user, rules, language, search)
    return _export(request, session, user, search.query)


# --- the chain ------------------------------------------------------------------------------


def _render_chain(
    request: Request,
    session: Session,
    user: WebUser,
    language: str,
    *,
    result: verification.Verification | None = None,
    took: float | None = None,
    checkpoint: str = "",
    errors: Mapping[str, str] | None = None,
) -> HTMLResponse:
    seq, head_hash = chain.head(session)
    chained_at = session.scalar(select(ChainLink.chained_at).where(ChainLink.seq == seq)) if seq else None
    return render(
        request,
        "audit_chain.html",
        user=user,
        status=422 if errors else 200,
        head={"seq": seq, "hash": head_hash, "chained_at": chained_at},
        estimate=seq / VERIFY_RATE,
        number=lambda value: f"{value:,}".replace(",", "\u00a0" if language == "fi" else ","),
        result=result,
        took=None if took is None else f"{took:.1f}".replace(".", "," if language == "fi" else "."),
        checkpoint=checkpoint,
        errors=errors or {},
    )


def _checkpoint(text: str) -> checkpoints.Checkpoint | None:
    """A checkpoint as `reitti audit checkpoint` or this page's download writes it; None when it is not one."""
    try:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            return None
        kept = CheckpointQuery.model_validate(raw).given()
    except (ValueError, InvalidQuery):  # not JSON, not its fields, or only some of them
        return None
    return checkpoints.Checkpoint(**kept.model_dump()) if kept else None


@router.get("/chain")
def chain_page(request: Request, user: AuditorDep, session: ReadSessionDep, language: LanguageDep) -> HTMLResponse:
    """The chain's head now, a button that verifies the whole chain, and a checkpoint to keep."""
    return _render_chain(request, session, user, language)


@router.post("/chain")
def verify_chain(
    request: Request, form: FormDep, user: AuditorDep, session: ReadSessionDep, language: LanguageDep, rules: RulesDep
) -> HTMLResponse:
    """Walk the whole chain as GET /v1/audit/verify does, checking a kept checkpoint if one is pasted."""
    check_csrf(request, form)
    text = form.get("checkpoint", "").strip()
    kept = _checkpoint(text) if text else None
    if text and kept is None:
        message = Translator(language, rules.registry)("audit.chain.checkpoint_invalid")
        return _render_chain(request, session, user, language, checkpoint=text, errors={"checkpoint": message})
    started = time.monotonic()
    result = verification.verify(session, checkpoint=kept, key=services(request).checkpoint_key)
    took = time.monotonic() - started
    log.info(
        "chain verified in the ui by %s: %s links, intact=%s, %.1f s",
        user.principal.name, result.links, result.intact, took,
    )  # fmt: skip
    return _render_chain(request, session, user, language, result=result, took=took, checkpoint=text)


@router.get("/checkpoint")
def checkpoint_download(request: Request, user: AuditorDep, session: ReadSessionDep) -> Response:
    """The chain's head now, signed, as a file to keep outside this service (GET /v1/audit/checkpoints)."""
    kept = checkpoints.checkpoint(session, services(request).checkpoint_key)
    disposition = {"Content-Disposition": f'attachment; filename="reitti-checkpoint-{kept.seq}.json"'}
    return Response(json.dumps(kept.as_json(), indent=2) + "\n", media_type="application/json", headers=disposition)


# --- the access log -------------------------------------------------------------------------


@router.get("/access")
def access_page(
    request: Request, user: AuditorDep, session: ReadSessionDep, rules: RulesDep, language: LanguageDep
) -> HTMLResponse:
    """Who read which decisions, newest first, with the filters of GET /v1/audit/access."""
    t = Translator(language, rules.registry)
    params = request.query_params
    values = {name: params.get(name, "") for name in ACCESS_FIELDS}
    errors: dict[str, str] = {}
    after, before = day_bounds(parse_day(values["from"], errors, "from", t), parse_day(values["to"], errors, "to", t))
    entries: Sequence[Any] = []
    next_cursor = None
    if not errors:
        asked = {name: values[name] or None for name in ACCESS_FIELDS[:5]}
        try:
            query = AccessQuery.model_validate(
                {**asked, "after": after, "before": before, "cursor": params.get("cursor") or None, "limit": PAGE_SIZE}
            )
            entries, next_cursor = access_log.list_access(session, query)
        except ValidationError as error:
            for problem in error.errors():
                name = str(problem["loc"][0]) if problem["loc"] else "form"
                message = t("audit.log.bad_cursor") if name == "cursor" else t("errors.invalid_value")
                name = {"after": "from", "before": "to", "cursor": "form", "limit": "form"}.get(name, name)
                errors.setdefault(name, message)
        except InvalidQuery:
            errors["form"] = t("audit.log.bad_cursor")
    return render(
        request,
        "audit_access.html",
        user=user,
        status=422 if errors else 200,
        values=values,
        errors=errors,
        entries=entries,
        next_cursor=next_cursor,
        paged=bool(params.get("cursor")),
        roles=[role.value for role in Role],
        actions=[action.value for action in AccessAction],
        municipalities=sorted(rules.registry.municipalities.items(), key=lambda m: m[1].casefold()),
        mine=user.principal.name,
    )
