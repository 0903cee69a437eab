"""The admin's page: API keys and UI users."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from app.models import ApiKey, User
from app.web.deps import ReadSessionDep, services
from app.web.ui.auth import AdminDep
from app.web.ui.i18n import Translator
from app.web.ui.render import LanguageDep, format_time, render

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("/admin")
def admin_page(request: Request, user: AdminDep, session: ReadSessionDep, language: LanguageDep) -> HTMLResponse:
    """API keys and users, never a key or a password hash."""
    t = Translator(language, services(request).rules.registry)

    def when(moment: datetime) -> str:
        return format_time(language, moment)

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
    return render(request, "admin.html", user=user, keys=keys, users=users)
