"""The admin's webhooks page: subscriptions made, disabled, enabled, rotated and removed; the delivery log."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.access.users import WebUser
from app.errors import InvalidBody, NotFound
from app.models import AnnouncedKind, DeliveryState, WebhookSubscription
from app.schemas import WebhookIn
from app.web.deps import ReadSessionDep, RulesDep, WriteTransactionDep, services
from app.web.ui.auth import AdminDep, check_csrf
from app.web.ui.render import FormDep, LanguageDep, redirect, render
from app.webhooks import subscriptions

router = APIRouter(prefix="/ui", include_in_schema=False)
FIELDS = ("url", "kinds", "units", "event_types")
# The newest messages shown for each subscription.
LOG_LENGTH = 20


def _listed(text: str) -> list[str]:
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


def _page(
    request: Request,
    session: Session,
    user: WebUser,
    *,
    status: int = 200,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    secret: tuple[int, str] | None = None,
) -> HTMLResponse:
    rows = subscriptions.listed(session)
    logs = {}
    for row in rows:
        messages = subscriptions.deliveries(session, row.id, limit=LOG_LENGTH)
        logs[row.id] = (messages, subscriptions.attempts(session, [m.id for m in messages]))
    return render(
        request,
        "webhooks.html",
        user=user,
        status=status,
        subscriptions=rows,
        logs=logs,
        kinds=[kind.value for kind in AnnouncedKind],
        form=form or {"kinds": []},
        errors=errors or {},
        secret=secret,
        done=request.query_params.get("done"),
        dead=DeliveryState.dead.value,
    )


@router.get("/admin/webhooks")
def webhooks_page(request: Request, user: AdminDep, session: ReadSessionDep, language: LanguageDep) -> HTMLResponse:
    """Every subscription, its filters and state, and its newest messages with each attempt."""
    return _page(request, session, user)


async def _fields(request: Request) -> list[tuple[str, str]]:
    # As the other forms (app/web/ui/render.py), urlencoded and small; a list, for the kinds' checkboxes.
    body = (await request.body()).decode("utf-8", errors="replace")
    return parse_qsl(body, keep_blank_values=True, max_num_fields=200)


@router.post("/admin/webhooks")
def add_webhook(
    request: Request,
    fields: Annotated[list[tuple[str, str]], Depends(_fields)],
    user: AdminDep,
    session: ReadSessionDep,
    transaction: WriteTransactionDep,
    rules: RulesDep,
    language: LanguageDep,
) -> Response:
    """Subscribe a receiver as POST /v1/webhooks would; the secret is shown on the page that answers, once."""
    given = dict(fields)
    form = {name: given.get(name, "") for name in ("csrf_token", "url", "units", "event_types", "full_record")}
    check_csrf(request, form)
    values: dict[str, Any] = {
        "url": form["url"].strip(),
        "kinds": [value for name, value in fields if name == "kinds"],
        "units": _listed(form["units"]),
        "event_types": _listed(form["event_types"]),
        "full_record": form["full_record"] == "on",
    }
    errors: dict[str, str] = {}
    try:
        body = WebhookIn.model_validate(values)
        with transaction() as writing:
            row = subscriptions.create(
                writing,
                body,
                created_by=user.principal.name,
                registry=rules.registry,
                allow_hosts=services(request).settings.webhook_allow_hosts,
            )
    except ValidationError as invalid:
        for error in invalid.errors():
            name = str(error["loc"][0]) if error["loc"] else "url"
            errors.setdefault(name if name in FIELDS else "url", "errors.invalid_value")
    except InvalidBody as refused:
        for field_error in refused.errors:
            name = str(field_error.loc[1])
            errors.setdefault(name, "webhooks.unsafe_url" if name == "url" else "errors.invalid_value")
    if errors:
        shown = {**values, "units": form["units"], "event_types": form["event_types"]}
        return _page(request, session, user, status=422, form=shown, errors=errors)
    return _page(request, session, user, status=201, secret=(row.id, row.secret))


ACTIONS = ("disable", "enable", "rotate", "remove", "redeliver")


@router.post("/admin/webhooks/{webhook_id}")
def change_webhook(
    request: Request,
    webhook_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    form: FormDep,
    user: AdminDep,
    session: ReadSessionDep,
    transaction: WriteTransactionDep,
    language: LanguageDep,
) -> Response:
    """One action on a subscription: disable, enable, rotate its secret, remove it, or send dead messages again."""
    check_csrf(request, form)
    action = form.get("action", "")
    if action not in ACTIONS:
        raise NotFound("No such action.")
    rotated: WebhookSubscription | None = None
    with transaction() as writing:
        if action in ("disable", "enable"):
            subscriptions.set_enabled(writing, webhook_id, enabled=action == "enable")
        elif action == "rotate":
            rotated = subscriptions.rotate(writing, webhook_id)
        elif action == "remove":
            subscriptions.remove(writing, webhook_id)
        else:
            delivery = form.get("delivery", "")  # none: every dead message of the subscription
            if delivery and not (delivery.isdigit() and len(delivery) < 19):
                raise NotFound("No such message.")
            subscriptions.redeliver(writing, webhook_id, delivery_id=int(delivery) if delivery else None)
    if rotated is not None:
        return _page(request, session, user, secret=(rotated.id, rotated.secret))
    return redirect(f"/ui/admin/webhooks?done={action}")
