"""The web UI: server-rendered pages for coaches, auditors and admins, on the API's own services.

A coach routes an event through the same path as POST /v1/events (`read_event`, then
`decisions.submit` in a write transaction opened here) with `ui:<username>` as the
client, and reads decisions through the same scoping as the API. Pages are Jinja2
templates; every text comes from `app.i18n`. Who the user is comes from `app.web_auth`
alone. Forms are plain HTML and work without JavaScript; `static/reitti.js` only reloads
the route form when the event type changes.

Every read of decisions goes through `_read_decision`, `_read_decisions`, `_read_overrides`
and `_read_link`, which record a person's reads in the access log as the API records them.
A decision's page lists its overrides (`decision_overrides.html`), and a coach or admin
records one there through `decisions.record_override`, as POST /v1/decisions/{id}/overrides
would; auditors and admins also see its link in the audit chain (`decision_link.html`).
The auditor's pages (the log, its export, the chain, the access log) are in `app.ui_audit`,
reached from `nav_audit.html`.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, urlsplit

import jinja2
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import audit, decisions, web_auth
from app.api import EngineDep, ReadSessionDep, RulesDep, WriteTransactionDep
from app.errors import (
    EventIdConflict,
    EventInvalid,
    FieldError,
    Forbidden,
    InvalidBody,
    InvalidQuery,
    NotFound,
    ReittiError,
)
from app.events import FINNISH_TIME, read_event
from app.i18n import DEFAULT_LANGUAGE, LANGUAGES, Translator, catalogue
from app.models import AccessAction, ApiKey, ChainLink, Decision, Override, OverrideReason, Role, User
from app.routing import new_decision_id
from app.ruleset import AttributeSpec, AttributeType, CustomerType, EventType, Note, Rules
from app.schemas import CustomerIn, DecisionQuery, EventIn, OverrideIn

log = logging.getLogger("reitti")
router = APIRouter(prefix="/ui", include_in_schema=False)

HERE = Path(__file__).parent
LANGUAGE_COOKIE = "reitti_lang"
PAGE_SIZE = 25
# Who may do what, as the API's own checks say (app/api.py): record overrides, read chain links and the audit.
OVERRIDE_ROLES = (Role.coach, Role.admin)
AUDIT_ROLES = (Role.auditor, Role.admin)
OVERRIDE_TEXT_LIMIT: int = OverrideIn.model_json_schema()["properties"]["text"]["maxLength"]
# The languages of service the form offers; any ISO 639-1 code is valid in the API.
SERVICE_LANGUAGES = ("fi", "sv", "se", "en", "ru", "et", "uk", "ar", "so", "fa", "ku", "es", "th", "vi", "zh")

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


# --- plumbing: templates, language, forms, the user ----------------------------------


@functools.cache
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _language(request: Request) -> str:
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    return chosen if chosen in LANGUAGES else DEFAULT_LANGUAGE


async def _form(request: Request) -> dict[str, str]:
    # Forms are urlencoded and small (BodyLimit caps them): no multipart parser needed.
    body = (await request.body()).decode("utf-8", errors="replace")
    return dict(parse_qsl(body, keep_blank_values=True, max_num_fields=200))


def _user_or_none(request: Request, session: ReadSessionDep) -> web_auth.WebUser | None:
    return web_auth.current_user(request, session)


def _user(request: Request, session: ReadSessionDep) -> web_auth.WebUser:
    user = web_auth.current_user(request, session)
    if user is None:
        raise web_auth.LoginRequired("Log in to see this page.")
    return user


LanguageDep = Annotated[str, Depends(_language)]
FormDep = Annotated[dict[str, str], Depends(_form)]
MaybeUserDep = Annotated[web_auth.WebUser | None, Depends(_user_or_none)]
UserDep = Annotated[web_auth.WebUser, Depends(_user)]


def _require(user: web_auth.WebUser, *roles: Role) -> None:
    if user.role not in roles:
        raise Forbidden(f"This page is for the role {', '.join(roles)}.")


def _render(
    request: Request,
    template: str,
    *,
    user: web_auth.WebUser | None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page in the visitor's language, with the session's CSRF token for its forms."""
    language = _language(request)
    rules: Rules | None = getattr(request.app.state, "rules", None)
    t = Translator(language, rules.registry) if rules else None
    html = (
        _templates()
        .get_template(template)
        .render(
            t=t,
            lang=language,
            user=user,
            csrf_token=web_auth.csrf_token(request),
            here=_here(request),
            format_time=functools.partial(_format_time, language),
            **context,
        )
    )
    response = HTMLResponse(html, status_code=status, headers=dict(headers or {}))
    web_auth.keep_session(request, response)
    return response


def _here(request: Request) -> str:
    """This page's path and query, for the language switch and the login's `next`."""
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{request.url.path}{query}"


def _safe_next(value: str | None) -> str:
    """A place in the UI to go back to; anything else (another site, the API) goes home."""
    if not value:
        return "/ui"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith("/ui") or "\\" in value or "//" in value:
        return "/ui"
    return value


def _redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)


def _format_time(language: str, value: str | datetime) -> str:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    local = moment.astimezone(FINNISH_TIME)
    if language == "fi":
        return f"{local.day}.{local.month}.{local.year} klo {local:%H.%M}"
    return f"{local:%Y-%m-%d %H:%M}"


# --- home, language, login ------------------------------------------------------------


@router.get("")
def home(user: MaybeUserDep) -> RedirectResponse:
    """Each role's first page; the login page for a visitor."""
    if user is None:
        return _redirect("/ui/login")
    return _redirect("/ui/route" if user.role is Role.coach else "/ui/decisions")


@router.get("/lang/{language}")
def choose_language(language: str, next: str | None = None) -> RedirectResponse:
    """Switch the UI's language and return to the page."""
    response = _redirect(_safe_next(next))
    if language in LANGUAGES:
        response.set_cookie(
            LANGUAGE_COOKIE,
            language,
            max_age=365 * 24 * 3600,
            path=web_auth.COOKIE_PATH,
            httponly=True,
            secure=True,
            samesite="lax",
        )
    return response


@router.get("/login")
def login_page(request: Request, user: MaybeUserDep, next: str | None = None, out: str | None = None) -> Response:
    """The login form (a logged-in user goes on)."""
    if user is not None:
        return _redirect(_safe_next(next))
    return _render(request, "login.html", user=None, next=_safe_next(next), logged_out=out is not None)


@router.post("/login")
def login(request: Request, form: FormDep, session: ReadSessionDep) -> Response:
    """Check the password, then start a session; failures are counted per name and address."""
    web_auth.check_csrf(request, form)
    username = form.get("username", "")[:64]
    address = request.client.host if request.client else "unknown"
    throttle: web_auth.LoginThrottle = request.app.state.login_throttle
    next_page = _safe_next(form.get("next"))
    try:
        throttle.check(username, address)
    except web_auth.TooManyAttempts as error:
        minutes = (error.retry_after + 59) // 60
        return _render(
            request, "login.html", user=None, status=429, headers=error.headers(), next=next_page,
            throttled=minutes, username=username,
        )  # fmt: skip
    row = web_auth.check_password(session, username, form.get("password", ""))
    if row is None:
        throttle.failed(username, address)
        log.info("ui login failed for %r from %s", username, address)
        return _render(request, "login.html", user=None, status=401, next=next_page, failed=True, username=username)
    throttle.succeeded(username)
    log.info("ui login: %s (%s)", row.username, row.role)
    response = _redirect(next_page)
    web_auth.start_session(request, response, row)
    return response


@router.post("/logout")
def logout(request: Request, form: FormDep) -> RedirectResponse:
    """End the session."""
    web_auth.check_csrf(request, form)
    response = _redirect("/ui/login?out")
    web_auth.end_session(request, response)
    return response


# --- routing an event -----------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One attribute's control on the route form."""

    name: str  # the form field: attr-<attribute>
    attribute: str
    kind: str  # boolean, choice, date
    label: str
    required: bool
    options: Sequence[tuple[str, str]] = ()  # (value, label), "" for not given
    hints: Sequence[str] = ()
    max: str | None = None


def _field(spec: AttributeSpec, t: Translator) -> Field:
    hints = []
    if spec.required_when is not None:
        hints.append(t("route.required_when", condition=t.condition(spec.required_when)))
    if isinstance(spec.absent_means, bool):
        hints.append(t("route.absent_means_false", value=t.value(spec.name, spec.absent_means)))
    if spec.echo:
        hints.append(t("route.echo"))
    blank = [] if spec.required and spec.type is AttributeType.boolean else [("", t("common.not_given"))]
    if spec.type is AttributeType.boolean:
        options = [("true", t("common.yes")), ("false", t("common.no")), *blank]
    elif spec.type is AttributeType.choice:
        first = [("", t("common.choose"))] if spec.required else blank
        options = [*first, *((v, t.value(spec.name, v)) for v in spec.values)]
    else:
        options = []
    return Field(
        name=f"attr-{spec.name}",
        attribute=spec.name,
        kind=spec.type.value,
        label=t.fact(spec.name),
        required=spec.required,
        options=options,
        hints=hints,
        max=spec.latest.isoformat() if spec.latest else None,
    )


@dataclass
class RouteForm:
    """What the route page shows: the picker, and the form of the chosen event type."""

    groups: Sequence[tuple[str, Sequence[tuple[str, str]]]]
    event_type: EventType | None = None
    fields: Sequence[Field] = ()
    integration: Sequence[Field] = ()
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    notice: str | None = None


def _picker(rules: Rules, t: Translator) -> list[tuple[str, list[tuple[str, str]]]]:
    """Event types by name in the user's language, jobseekers' and persons' first, then employers'."""
    groups: dict[str, list[tuple[str, str]]] = {"jobseeker": [], "employer": []}
    for code, event_type in rules.registry.event_types.items():
        group = "employer" if set(event_type.customer_types) == {CustomerType.employer} else "jobseeker"
        groups[group].append((code, t.pick(event_type.name)))
    return [(t(f"route.groups.{g}"), sorted(items, key=lambda item: item[1].casefold())) for g, items in groups.items()]


def _route_form(rules: Rules, t: Translator, event_type: EventType | None, user: web_auth.WebUser) -> RouteForm:
    form = RouteForm(groups=_picker(rules, t), event_type=event_type)
    if event_type is None:
        return form
    flags = set(rules.registry.integration_status)
    specs = event_type.attributes.values()
    form.fields = [_field(spec, t) for spec in specs if spec.name not in flags]
    # The fieldset says once what an empty integration status means.
    form.integration = [replace(_field(spec, t), hints=()) for spec in specs if spec.name in flags]
    form.labels = {
        **{name: t(f"route.{name}") for name in ("occurred_at", "customer_type", "customer_id", "home_municipality")},
        "language": t("route.language"),
        "event_type": t("route.event_type"),
        "event_id": t("decision.event_id"),
        **{f.name: f.label for f in [*form.fields, *form.integration]},
    }
    form.values = {
        "event_id": f"ui-{new_decision_id()}",
        "occurred_at": datetime.now(FINNISH_TIME).strftime("%Y-%m-%dT%H:%M"),
        "customer_type": event_type.customer_types[0].value,
        "home_municipality": user.municipality or "",
        "language": "",
    }
    return form


def _render_route(request: Request, user: web_auth.WebUser, form: RouteForm, status: int = 200) -> HTMLResponse:
    return _render(
        request,
        "route.html",
        user=user,
        status=status,
        form=form,
        municipalities=sorted(request.app.state.rules.registry.municipalities.items(), key=lambda m: m[1]),
        service_languages=SERVICE_LANGUAGES,
    )


@router.get("/route")
def route_page(
    request: Request, user: UserDep, rules: RulesDep, language: LanguageDep, event_type: str | None = None
) -> HTMLResponse:
    """Choose an event type; with one chosen, its form."""
    _require(user, Role.coach)
    t = Translator(language, rules.registry)
    chosen = rules.registry.event_types.get(event_type or "")
    return _render_route(request, user, _route_form(rules, t, chosen, user))


def _event_body(form: Mapping[str, str], event_type: EventType) -> tuple[EventIn | None, list[FieldError]]:
    """The API's event body from the form, or the fields that cannot make one."""
    errors: list[FieldError] = []
    try:
        occurred = datetime.fromisoformat(form.get("occurred_at", "")).replace(tzinfo=FINNISH_TIME)
    except ValueError:
        errors.append(FieldError(("body", "occurred_at"), "time"))
        occurred = datetime.now(FINNISH_TIME)
    attributes: dict[str, Any] = {}
    for name, spec in event_type.attributes.items():
        value = form.get(f"attr-{name}", "")
        if value == "":
            continue
        if spec.type is AttributeType.boolean:
            if value not in ("true", "false"):
                errors.append(FieldError(("body", "attributes", name), "invalid"))
                continue
            attributes[name] = value == "true"
        else:
            attributes[name] = value
    try:
        body = EventIn(
            event_id=form.get("event_id", ""),
            event_type=event_type.code,
            occurred_at=occurred,
            customer=CustomerIn(
                type=form.get("customer_type", ""),
                id=form.get("customer_id", ""),
                home_municipality=form.get("home_municipality", ""),
                language=form.get("language") or None,
            ),
            attributes=attributes,
        )
    except ValidationError as error:
        # A nested model's errors carry its own loc: name the customer's fields as read_event does.
        for problem in error.errors():
            loc = tuple(problem["loc"])
            if problem["loc"] and problem["loc"][0] in CustomerIn.model_fields and len(loc) == 1:
                loc = ("customer", *loc)
            errors.append(FieldError(("body", *loc), str(problem["type"])))
        return None, errors
    return (None if errors else body), errors


def _field_name(loc: Sequence[str | int]) -> str:
    """The form field an error of the API's shape belongs to."""
    path = [str(part) for part in loc[1:]]
    if path[:1] == ["customer"] and len(path) == 2:
        return {"type": "customer_type", "id": "customer_id"}.get(path[1], path[1])
    if path[:1] == ["attributes"] and len(path) == 2:
        return f"attr-{path[1]}"
    return path[0] if len(path) == 1 else "form"


def _field_message(
    error: FieldError, name: str, form: Mapping[str, str], event_type: EventType, rules: Rules, t: Translator
) -> str:
    """The error in the user's language, from what the form sent rather than the API's English."""
    given = form.get(name, "") != ""
    if name.startswith("attr-"):
        attribute = name.removeprefix("attr-")
        spec = event_type.attributes.get(attribute)
        flags = set(rules.registry.integration_status)
        if spec is None:
            return t("errors.invalid_value")
        if attribute in flags and form.get("customer_type") != CustomerType.jobseeker:
            return t("errors.integration_jobseeker")
        if not given:
            if attribute in flags and any(form.get(f"attr-{f}") for f in flags):
                return t("errors.integration_all")
            if spec.required_when is not None:
                return t("errors.required_when", condition=t.condition(spec.required_when))
            return t("errors.required")
        if spec.type is AttributeType.date:
            value = form.get(name, "")
            if spec.latest and spec.latest_reason and value[:10] > spec.latest.isoformat():
                return t.pick(spec.latest_reason)
            return t("errors.date")
        return t("errors.invalid_value")
    if name == "customer_id":
        return t("errors.customer_id") if given else t("errors.required")
    if name == "language" and not given and event_type.language_required_when is not None:
        return t("errors.language_required", condition=t.condition(event_type.language_required_when))
    if name == "occurred_at":
        return t("errors.no_ruleset") if given and error.msg != "time" else t("errors.time")
    return t("errors.required") if not given else t("errors.invalid_value")


def _form_errors(
    errors: Sequence[FieldError], form: Mapping[str, str], event_type: EventType, rules: Rules, t: Translator
) -> dict[str, str]:
    messages: dict[str, str] = {}
    for error in errors:
        name = _field_name(error.loc)
        messages.setdefault(name, _field_message(error, name, form, event_type, rules, t))
    return messages


@router.post("/route")
def route_event(
    request: Request,
    form: FormDep,
    user: UserDep,
    rules: RulesDep,
    engine: EngineDep,
    transaction: WriteTransactionDep,
    language: LanguageDep,
) -> Response:
    """Route the event as POST /v1/events would, with the coach as the client; show the decision."""
    web_auth.check_csrf(request, form)
    _require(user, Role.coach)
    t = Translator(language, rules.registry)
    event_type = rules.registry.event_types.get(form.get("event_type", ""))
    if event_type is None:
        return _redirect("/ui/route")
    page = _route_form(rules, t, event_type, user)
    # The customer's id is never shown back, not even to the coach who typed it.
    page.values = {k: v for k, v in form.items() if k not in ("customer_id", "csrf_token")}
    body, errors = _event_body(form, event_type)
    event = None
    if body is not None:
        try:
            event = read_event(body, rules, pseudonym_key=request.app.state.pseudonym_key)
        except EventInvalid as invalid:
            errors = invalid.errors
    if event is None or body is None:
        page.errors = _form_errors(errors, form, event_type, rules, t)
        return _render_route(request, user, page, status=422)
    principal = user.principal
    fingerprint = decisions.request_fingerprint(body, event.customer_pseudonym)
    try:
        with transaction() as session:  # committed here, before the redirect
            decision, created = decisions.submit(
                session, client=principal.name, event=event, fingerprint=fingerprint, engine=engine,
                registry=rules.registry,
            )  # fmt: skip
    except EventIdConflict:
        page.values["event_id"] = f"ui-{new_decision_id()}"
        page.notice = t("route.already_submitted")
        return _render_route(request, user, page, status=409)
    if created:
        log.info(
            "decision %s: event_type=%s rule=%s handler=%s client=%s",
            decision["decision_id"], event.event_type.code, decision["rule"]["id"], decision["handler"]["unit"],
            principal.name,
        )  # fmt: skip
    return _redirect(f"/ui/decisions/{decision['decision_id']}?created")


# --- reading decisions ---------------------------------------------------------------


def _read_decision(request: Request, session: Session, user: web_auth.WebUser, decision_id: str) -> dict[str, Any]:
    """One decision the user may see (404 otherwise), recorded in the access log, a refused one too."""
    transaction = request.app.state.write_sessions
    try:
        decision = decisions.get_decision(session, user.principal, decision_id)
    except NotFound:
        audit.log_read(transaction, user.principal, AccessAction.decision, rows=0, decision_id=decision_id)
        raise
    audit.log_read(transaction, user.principal, AccessAction.decision, rows=1, decision_id=decision_id)
    return decision


def _read_decisions(
    request: Request, session: Session, user: web_auth.WebUser, query: DecisionQuery
) -> tuple[Sequence[dict[str, Any]], str | None]:
    """A page of the decisions the user may see, recorded in the access log with its filters."""
    items, next_cursor = decisions.list_decisions(session, user.principal, query)
    audit.log_read(request.app.state.write_sessions, user.principal, AccessAction.list, rows=len(items), filters=query)
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
    request: Request, session: Session, user: web_auth.WebUser, decision_id: str
) -> Sequence[tuple[Override, int]]:
    """A visible decision's overrides, recorded in the access log as GET /v1/decisions/{id}/overrides records them."""
    transaction = request.app.state.write_sessions
    with audit.logged_read(transaction, user.principal, AccessAction.overrides, decision_id) as read:
        found = decisions.list_overrides(session, user.principal, decision_id)
        read.rows = len(found)
    return found


def _read_link(
    request: Request, session: Session, user: web_auth.WebUser, decision_id: str
) -> tuple[ChainLink, str] | None:
    """The decision's link in the audit chain, logged as GET /v1/decisions/{id}/link logs it; None when it has none."""
    transaction = request.app.state.write_sessions
    try:
        with audit.logged_read(transaction, user.principal, AccessAction.link, decision_id) as read:
            found = decisions.get_link(session, user.principal, decision_id)
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
    user: web_auth.WebUser,
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
    return _render(
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
        link_holds=link is not None and audit.link_hash(link[0].prev_hash, link[1]) == link[0].hash,
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
    web_auth.check_csrf(request, form)
    _require(user, *OVERRIDE_ROLES)
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
                row, _ = decisions.record_override(
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
    return _redirect(f"/ui/decisions/{quote(decision_id)}?overridden#overrides")


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
    return _render(
        request,
        "decisions.html",
        user=user,
        status=422 if errors else 200,
        items=items,
        customers=_customers(session, [d["decision_id"] for d in items]) if items else {},
        filters=filters,
        errors=errors,
        event_types=_picker(rules, t),
        units=units,
        older=older,
        paged=cursor is not None,
    )


# --- admin ---------------------------------------------------------------------------


@router.get("/admin")
def admin_page(request: Request, user: UserDep, session: ReadSessionDep, language: LanguageDep) -> HTMLResponse:
    """API keys and users, never a key or a password hash."""
    _require(user, Role.admin)
    t = Translator(language, request.app.state.rules.registry)

    def when(moment: datetime) -> str:
        return _format_time(language, moment)

    def where(municipality: str | None) -> str:
        return t.municipality(municipality) if municipality else "–"

    keys = [
        [str(k.id), f"{k.prefix}…", k.name, t(f"roles.{k.role}"), where(k.municipality), when(k.created_at),
         t("admin.revoked", date=when(k.revoked_at)) if k.revoked_at else t("admin.active")]
        for k in session.scalars(select(ApiKey).order_by(ApiKey.id))
    ]  # fmt: skip
    users = [
        [str(u.id), u.username, u.display_name, t(f"roles.{u.role}"), where(u.municipality), when(u.created_at),
         t("admin.disabled", date=when(u.disabled_at)) if u.disabled_at else t("admin.active")]
        for u in session.scalars(select(User).order_by(User.id))
    ]  # fmt: skip
    return _render(request, "admin.html", user=user, keys=keys, users=users)


# --- errors, headers, installation ----------------------------------------------------


def _error_page(request: Request, error: Exception) -> Response:
    """An error as a page in the visitor's language; a missing login goes to the login page."""
    if isinstance(error, web_auth.LoginRequired):
        back = f"?next={quote(_here(request), safe='/')}" if request.method == "GET" else ""
        return _redirect(f"/ui/login{back}")
    status, key = 500, "500"
    if isinstance(error, web_auth.CsrfRefused):
        status, key = 403, "csrf"
    elif isinstance(error, ReittiError):
        status = error.status
        key = str(status) if f"error_page.{status}" in catalogue(DEFAULT_LANGUAGE) else "400"
    elif isinstance(error, StarletteHTTPException):
        status = error.status_code
        key = "404" if status == 404 else "400" if status < 500 else "500"
    elif isinstance(error, RequestValidationError):
        status, key = 400, "400"
    elif isinstance(error, OperationalError):
        status, key = 503, "503"
    if status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, type(error).__name__, exc_info=status == 500)
    user = None
    if status < 500:  # the menu stays, so that a coach who took a wrong turn can go on
        try:
            with request.app.state.read_sessions() as session:
                user = web_auth.current_user(request, session)
        except OperationalError:
            user = None
    headers = {"Retry-After": "5"} if status == 503 else {}
    return _render(request, "error.html", user=user, status=status, headers=headers, key=key)


Handler = Callable[[Request, Any], Response | Awaitable[Response]]


def _html_for_ui(api_handler: Handler) -> Handler:
    """Render an error as an HTML page under /ui, and as the API's problem JSON elsewhere."""

    async def handle(request: Request, error: Exception) -> Response:
        if request.url.path == "/" or request.url.path.startswith("/ui"):
            return await run_in_threadpool(_error_page, request, error)  # it may read the user
        response = api_handler(request, error)
        return await response if inspect.isawaitable(response) else response

    return handle


class SecurityHeaders:
    """CSP without inline scripts, no framing, no sniffing, no caching of pages, for the UI."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else None
        if path is None or not (path == "/" or path.startswith("/ui")):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), *SECURITY_HEADERS]
                if not path.startswith("/ui/static/"):
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def install_ui(app: FastAPI) -> None:
    """Add the UI to the app: its pages, static files, headers and HTML errors; / goes to /ui."""
    from app import ui_audit  # here, not at the top: the auditor's pages are built on this module's plumbing

    app.include_router(router)
    app.include_router(ui_audit.router)
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")
    app.add_api_route("/", lambda: _redirect("/ui"), include_in_schema=False)
    app.add_middleware(SecurityHeaders)
    app.state.login_throttle = web_auth.LoginThrottle()
    for kind in (ReittiError, RequestValidationError, StarletteHTTPException, OperationalError, Exception):
        app.add_exception_handler(kind, _html_for_ui(app.exception_handlers[kind]))
