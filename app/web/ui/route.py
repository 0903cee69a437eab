"""The coach routes an event: a form made from the event type's attributes, errors at each field."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from app.access.users import WebUser
from app.decisions import intake, store
from app.errors import (
    EventIdConflict,
    EventInvalid,
    FieldError,
)
from app.rules.model import AttributeSpec, AttributeType, CustomerType, EventType, Rules
from app.rules.routing import new_decision_id
from app.schemas import CustomerIn, EventIn
from app.time import FINNISH_TIME
from app.web.deps import EngineDep, RulesDep, WriteTransactionDep, services
from app.web.ui.auth import CoachDep, check_csrf
from app.web.ui.i18n import Translator
from app.web.ui.render import FormDep, LanguageDep, redirect, render

router = APIRouter(prefix="/ui", include_in_schema=False)

# The languages of service the form offers; any ISO 639-1 code is valid in the API.
SERVICE_LANGUAGES = ("fi", "sv", "se", "en", "ru", "et", "uk", "ar", "so", "fa", "ku", "es", "th", "vi", "zh")


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


def event_type_picker(rules: Rules, t: Translator) -> list[tuple[str, list[tuple[str, str]]]]:
    """Event types by name in the user's language, jobseekers' and persons' first, then employers'."""
    groups: dict[str, list[tuple[str, str]]] = {"jobseeker": [], "employer": []}
    for code, event_type in rules.registry.event_types.items():
        group = "employer" if set(event_type.customer_types) == {CustomerType.employer} else "jobseeker"
        groups[group].append((code, t.pick(event_type.name)))
    return [(t(f"route.groups.{g}"), sorted(items, key=lambda item: item[1].casefold())) for g, items in groups.items()]


def _route_form(rules: Rules, t: Translator, event_type: EventType | None, user: WebUser) -> RouteForm:
    form = RouteForm(groups=event_type_picker(rules, t), event_type=event_type)
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


def _render_route(request: Request, user: WebUser, form: RouteForm, status: int = 200) -> HTMLResponse:
    return render(
        request,
        "route.html",
        user=user,
        status=status,
        form=form,
        municipalities=sorted(services(request).rules.registry.municipalities.items(), key=lambda m: m[1]),
        service_languages=SERVICE_LANGUAGES,
    )


@router.get("/route")
def route_page(
    request: Request, user: CoachDep, rules: RulesDep, language: LanguageDep, event_type: str | None = None
) -> HTMLResponse:
    """Choose an event type; with one chosen, its form."""
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
    if name == "home_municipality" and error.msg == intake.OUTSIDE_SCOPE:
        return t("errors.outside_municipality")
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
    user: CoachDep,
    rules: RulesDep,
    engine: EngineDep,
    transaction: WriteTransactionDep,
    language: LanguageDep,
) -> Response:
    """Route the event as POST /v1/events would, with the coach as the client; show the decision."""
    check_csrf(request, form)
    t = Translator(language, rules.registry)
    event_type = rules.registry.event_types.get(form.get("event_type", ""))
    if event_type is None:
        return redirect("/ui/route")
    page = _route_form(rules, t, event_type, user)
    # The customer's id is never shown back, not even to the coach who typed it.
    page.values = {k: v for k, v in form.items() if k not in ("customer_id", "csrf_token")}
    body, errors = _event_body(form, event_type)
    submission = None
    if body is not None:
        try:
            opened = services(request)
            submission = intake.prepare(
                body, client=user.principal.name, rules=rules, engine=engine, pseudonym_key=opened.pseudonym_key,
                future_tolerance=timedelta(seconds=opened.settings.future_tolerance_seconds),
            )  # fmt: skip
            intake.check_scope(user.principal, submission)
        except EventInvalid as invalid:
            submission = None
            errors = invalid.errors
    if submission is None:
        page.errors = _form_errors(errors, form, event_type, rules, t)
        return _render_route(request, user, page, status=422)
    try:
        with transaction() as session:  # committed here, before the redirect
            decision, created = store.submit(session, submission)
    except EventIdConflict:
        page.values["event_id"] = f"ui-{new_decision_id()}"
        page.notice = t("route.already_submitted")
        return _render_route(request, user, page, status=409)
    if created:
        intake.log_new(submission, decision)
    return redirect(f"/ui/decisions/{decision.decision_id}?created")
