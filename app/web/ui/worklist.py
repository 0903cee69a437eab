"""A unit's worklist page (take and return items, handovers in and out) and a customer's journey."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.access import roles
from app.access.identity import InvalidIdentifier, check_identifier, pseudonymise
from app.access.users import WebUser
from app.errors import NotFound
from app.models import ItemKind, ReturnReason
from app.rules.model import Rules
from app.schemas import CustomerRegisterOut, ReturnIn, WorklistQuery
from app.web.deps import ReadSessionDep, RulesDep, WriteTransactionDep, services
from app.web.ui.auth import Allowed, DecisionReaderDep, check_csrf, reader
from app.web.ui.i18n import Translator
from app.web.ui.render import FormDep, LanguageDep, redirect, render
from app.worklists import items, reads

log = logging.getLogger("reitti")
router = APIRouter(prefix="/ui", include_in_schema=False)
StaffDep = Annotated[WebUser, Depends(Allowed(roles.STAFF))]
RETURN_TEXT_LIMIT: int = ReturnIn.model_json_schema()["properties"]["text"]["maxLength"]
PAGE_SIZE = 100


def waited(t: Translator, seconds: int) -> str:
    """How long an item has waited, in the largest units that say it."""
    days, rest = divmod(seconds, 86_400)
    hours, minutes = rest // 3600, rest % 3600 // 60
    if days:
        return t("worklist.days", days=days, hours=hours)
    if hours:
        return t("worklist.hours", hours=hours, minutes=minutes)
    return t("worklist.minutes", minutes=minutes)


def _worklist_page(
    request: Request,
    user: WebUser,
    session: Session,
    rules: Rules,
    language: str,
    *,
    form_errors: dict[str, dict[str, str]] | None = None,
    form_values: dict[str, dict[str, str]] | None = None,
    status: int = 200,
) -> HTMLResponse:
    assert user.unit is not None, "every member of the staff roles belongs to a unit"
    kind = request.query_params.get("kind") or None
    query = WorklistQuery(kind=ItemKind(kind) if kind in set(ItemKind) else None, limit=PAGE_SIZE)
    page = reads.read_worklist(reader(request, user, session), user.unit, query, known_units=rules.registry.units)
    t = Translator(language, rules.registry)
    return render(
        request,
        "worklist.html",
        user=user,
        status=status,
        page=page,
        kind=query.kind.value if query.kind else "",
        kinds=[k.value for k in ItemKind],
        waited=lambda seconds: waited(t, seconds),
        reasons=[(r.value, t(f"worklist.reasons.{r.value}")) for r in ReturnReason],
        taken="taken" in request.query_params,
        returned="returned" in request.query_params,
        form_errors=form_errors or {},
        form_values=form_values or {},
        text_limit=RETURN_TEXT_LIMIT,
    )


@router.get("/worklist")
def worklist_page(
    request: Request, user: StaffDep, session: ReadSessionDep, rules: RulesDep, language: LanguageDep
) -> HTMLResponse:
    """The open items of the user's unit, oldest first, with take and return for each."""
    return _worklist_page(request, user, session, rules, language)


@router.post("/worklist/{decision_id}/acknowledgement")
def take_item(
    request: Request, decision_id: str, form: FormDep, user: StaffDep, transaction: WriteTransactionDep
) -> Response:
    """Take the item, as POST /v1/decisions/{id}/acknowledgements does."""
    check_csrf(request, form)
    assert user.unit is not None
    with transaction() as session:
        items.acknowledge(session, user.principal, decision_id=decision_id, unit=user.unit)
    log.info("acknowledgement of decision %s by unit %s (ui:%s)", decision_id, user.unit, user.username)
    return redirect("/ui/worklist?taken=1")


@router.post("/worklist/{decision_id}/return")
def return_item(
    request: Request,
    decision_id: str,
    form: FormDep,
    user: StaffDep,
    session: ReadSessionDep,
    rules: RulesDep,
    language: LanguageDep,
    transaction: WriteTransactionDep,
) -> Response:
    """Return the item to the sending side with a reason, as POST /v1/decisions/{id}/returns does."""
    check_csrf(request, form)
    assert user.unit is not None
    values = {"reason": form.get("reason", ""), "text": form.get("text", "")}
    try:
        body = ReturnIn.model_validate({"unit": user.unit, **{k: v for k, v in values.items() if v}})
    except ValidationError as error:
        t = Translator(language, rules.registry)
        errors: dict[str, str] = {}
        for problem in error.errors():
            name = str(problem["loc"][0]) if problem["loc"] else "reason"
            if name == "text":
                too_long = problem["type"] == "string_too_long"
                message = t("worklist.return_text_identity") if not too_long else t("errors.invalid_value")
            else:
                message = t("errors.required") if not values.get("reason") else t("errors.invalid_value")
            errors.setdefault(name, message)
        # The text is not sent back when it held an identity code: the code is not shown again.
        kept = {**values, "text": "" if "text" in errors else values["text"]}
        return _worklist_page(
            request,
            user,
            session,
            rules,
            language,
            form_errors={decision_id: errors},
            form_values={decision_id: kept},
            status=422,
        )
    with transaction() as write:
        row, _, _ = items.return_item(
            write, user.principal, decision_id=decision_id, unit=body.unit, reason=body.reason, text=body.text
        )
    log.info("return of decision %s by unit %s to %s (ui:%s)", decision_id, user.unit, row.returned_to, user.username)
    return redirect("/ui/worklist?returned=1")


def _customer_page(
    request: Request,
    user: WebUser,
    *,
    register: CustomerRegisterOut | None = None,
    error: str | None = None,
    not_found: bool = False,
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "customer.html",
        user=user,
        status=status,
        register=register,
        error=error,
        not_found=not_found,
    )


@router.get("/customer")
def customer_form(request: Request, user: DecisionReaderDep) -> HTMLResponse:
    """The form that asks for a customer's id: in the body of a POST, never in the address."""
    return _customer_page(request, user)


@router.post("/customer")
def customer_journey(
    request: Request,
    form: FormDep,
    user: DecisionReaderDep,
    session: ReadSessionDep,
    rules: RulesDep,
    language: LanguageDep,
) -> HTMLResponse:
    """The customer's holder now and the history, scoped as GET /v1/customership is."""
    check_csrf(request, form)
    t = Translator(language, rules.registry)
    code = form.get("customer_id", "").strip()
    if not code:
        return _customer_page(request, user, error=t("errors.required"), status=422)
    try:
        check_identifier(code)
    except InvalidIdentifier:  # its message never repeats the code
        return _customer_page(request, user, error=t("errors.customer_id"), status=422)
    pseudonym = pseudonymise(services(request).pseudonym_key, code)
    try:
        register = reads.read_customership(reader(request, user, session), pseudonym)
    except NotFound:
        return _customer_page(request, user, not_found=True, status=404)
    return _customer_page(request, user, register=register)
