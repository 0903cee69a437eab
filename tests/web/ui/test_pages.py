"""The web UI over plain HTTP: sessions, CSRF, throttling, headers, scope, and the texts."""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import html
import io
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, unquote

import httpx
import pytest
from sqlalchemy import select, text, update

from app.access.identity import pseudonymise
from app.access.sessions import WebSession, encode_session
from app.access.users import hash_password, verify_password
from app.config import REPOSITORY, Settings
from app.db import make_engine
from app.models import AccessAction, Decision, Override, OverrideReason, UiSession
from app.rules.model import AttributeType, Rules
from app.web.ui.auth import SESSION_COOKIE
from app.web.ui.i18n import Translator, catalogue
from tests.conftest import (
    TEST_PSEUDONYM_KEY,
    TEST_SESSION_SECRET,
    KeyMaker,
    Server,
    UserMaker,
    chain_verifies,
    count_rows,
    without_append_only_triggers,
)
from tests.test_personal_data import stored_text
from tests.web.api.test_events import IDENTITY_CODE, oeo_start

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Served(Protocol):
    """A running service: the in-process test server, or `reitti serve` with workers."""

    base_url: str


class Visitor:
    """A browser without a browser: keeps the UI's cookies (Secure ones too, over loopback HTTP)."""

    def __init__(self, server: Served, address: str | None = None) -> None:
        # `address`: the loopback address to come from (127.0.0.0/8 is all loopback).
        transport = httpx.HTTPTransport(local_address=address) if address else None
        self.client = httpx.Client(base_url=server.base_url, timeout=30, follow_redirects=False, transport=transport)
        self.cookies: dict[str, str] = {}
        self.set_cookies: list[str] = []

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        response = self.client.request(method, path, headers=headers, **kwargs)
        for header in response.headers.get_list("set-cookie"):
            self.set_cookies.append(header)
            name, _, value = header.split(";")[0].partition("=")
            self.cookies[name] = value
        return response

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, data: dict[str, str], **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, data=data, **kwargs)

    def token(self, path: str) -> str:
        """The CSRF token of the first form on a page."""
        match = CSRF.search(self.get(path).text)
        assert match, f"no form on {path}"
        return match.group(1)

    def login(self, username: str, password: str) -> httpx.Response:
        response = self.post(
            "/ui/login", {"csrf_token": self.token("/ui/login"), "username": username, "password": password}
        )
        return response

    def route(self, event_type: str = "oeo.start", **fields: str) -> httpx.Response:
        """Fill the route form as shown, with `fields` on top, and send it."""
        page = self.get(f"/ui/route?event_type={event_type}").text
        form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
        form["occurred_at"] = re.search(r'name="occurred_at" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        form.update({"customer_type": "jobseeker", "home_municipality": "244", **fields})
        return self.post("/ui/route", form)


VisitorMaker = Callable[[], Visitor]


def _cookie_attributes(header: str) -> set[str]:
    return {part.strip().lower() for part in header.split(";")[1:]}


class TestLogin:
    def test_login_page_gives_an_anonymous_session_cookie_that_scripts_cannot_read(self, visitor: Visitor) -> None:
        response = visitor.get("/ui/login")
        assert response.status_code == 200
        (cookie,) = [c for c in visitor.set_cookies if c.startswith(f"{SESSION_COOKIE}=")]
        attributes = _cookie_attributes(cookie)
        assert {"httponly", "secure", "samesite=lax", "path=/ui"} <= attributes

    def test_right_password_starts_a_new_session_and_goes_to_the_route_page(
        self, visitor: Visitor, make_user: UserMaker
    ) -> None:
        name, password = make_user("kaisa")
        visitor.get("/ui/login")
        before = visitor.cookies[SESSION_COOKIE]
        response = visitor.login(name, password)
        assert response.status_code == 303
        assert visitor.cookies[SESSION_COOKIE] != before  # no session fixation
        assert visitor.get("/ui").headers["location"] == "/ui/route"
        assert "Kaisa" in visitor.get("/ui/route").text

    def test_wrong_password_and_unknown_name_get_the_same_answer(self, visitor: Visitor, make_user: UserMaker) -> None:
        name, _ = make_user("kalle")
        wrong = visitor.login(name, "not the password")
        unknown = visitor.login("nobody", "not the password")
        assert wrong.status_code == unknown.status_code == 401
        assert "Käyttäjätunnus tai salasana on väärin." in wrong.text
        assert "Käyttäjätunnus tai salasana on väärin." in unknown.text

    def test_failures_from_another_address_do_not_lock_the_coach_out(
        self, visitor: Visitor, new_visitor: VisitorMaker, make_user: UserMaker, server: Server
    ) -> None:
        name, password = make_user("throttled")
        attacker = Visitor(server, address="127.0.0.2")
        try:
            for _ in range(6):
                assert attacker.login(name, "guess").status_code in (401, 429)
            # The attacker's own pair waits; the coach, from her own address, gets in.
            assert attacker.login(name, password).status_code == 429
        finally:
            attacker.client.close()
        assert visitor.login(name, password).status_code == 303

    def test_login_returns_to_the_page_asked_for_but_never_to_another_site(
        self, visitor: Visitor, make_user: UserMaker
    ) -> None:
        name, password = make_user("nextpage")
        asked = visitor.get("/ui/decisions?event_type=oeo.start")
        assert asked.status_code == 303
        assert asked.headers["location"] == "/ui/login?next=/ui/decisions%3Fevent_type%3Doeo.start"
        token = visitor.token(asked.headers["location"])
        data = {"csrf_token": token, "username": name, "password": password, "next": "https://evil.example/ui"}
        assert visitor.post("/ui/login", data).headers["location"] == "/ui"

    def test_logout_ends_the_session(self, visitor: Visitor, make_user: UserMaker) -> None:
        visitor.login(*make_user("leaving"))
        response = visitor.post("/ui/logout", {"csrf_token": visitor.token("/ui/route")})
        assert response.status_code == 303
        assert visitor.get("/ui/route").status_code == 303

    def test_a_disabled_account_is_out_at_its_next_request(
        self, visitor: Visitor, make_user: UserMaker, database_url: str
    ) -> None:
        visitor.login(*make_user("disabled"))
        assert visitor.get("/ui/route").status_code == 200
        engine = make_engine(database_url)
        with engine.begin() as connection:
            connection.execute(text("UPDATE users SET disabled_at = CURRENT_TIMESTAMP WHERE username = 'disabled'"))
        engine.dispose()
        assert visitor.get("/ui/route").status_code == 303


class TestSessionCannotBeForged:
    def _signed_in(self, visitor: Visitor, make_user: UserMaker, name: str) -> str:
        visitor.login(*make_user(name))
        return visitor.cookies[SESSION_COOKIE]

    def test_a_signed_cookie_never_logs_anyone_in(self, visitor: Visitor, make_user: UserMaker) -> None:
        self._signed_in(visitor, make_user, "forger")
        anonymous = encode_session(TEST_SESSION_SECRET.encode(), WebSession(sid="x"))
        payload, _ = anonymous.split(".")
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        data.update({"uid": 1, "pw": "x"})  # what a logged-in cookie used to carry, signed with the right secret
        raw = json.dumps(data).encode()
        signature = hmac.new(TEST_SESSION_SECRET.encode(), b"session|" + raw, hashlib.sha256).digest()
        b64 = base64.urlsafe_b64encode
        visitor.cookies[SESSION_COOKIE] = f"{b64(raw).decode().rstrip('=')}.{b64(signature).decode().rstrip('=')}"
        assert visitor.get("/ui/route").status_code == 303

    def test_a_made_up_or_stored_id_is_a_visitor(
        self, visitor: Visitor, make_user: UserMaker, database_url: str
    ) -> None:
        cookie = self._signed_in(visitor, make_user, "guesser")
        assert visitor.get("/ui/route").status_code == 200
        engine = make_engine(database_url)
        with engine.connect() as connection:
            (stored,) = connection.execute(text("SELECT id_sha256 FROM ui_sessions")).scalars()
        engine.dispose()
        assert stored == hashlib.sha256(cookie.encode()).hexdigest()  # only the hash is kept
        for value in (stored, cookie[:-1] + ("A" if cookie[-1] != "A" else "B")):
            visitor.cookies[SESSION_COOKIE] = value
            assert visitor.get("/ui/route").status_code == 303

    def test_a_session_older_than_a_working_day_has_ended(
        self, visitor: Visitor, make_user: UserMaker, database_url: str
    ) -> None:
        self._signed_in(visitor, make_user, "oldsession")
        age_sessions(database_url, "expires_at", hours=-9)
        assert visitor.get("/ui/route").status_code == 303

    def test_a_new_password_ends_the_sessions_made_with_the_old_one(
        self, visitor: Visitor, make_user: UserMaker, database_url: str
    ) -> None:
        self._signed_in(visitor, make_user, "newpassword")
        engine = make_engine(database_url)
        with engine.begin() as connection:
            connection.execute(
                text("UPDATE users SET password_hash = :hash WHERE username = 'newpassword'"),
                {"hash": hash_password("another long password")},
            )
        engine.dispose()
        assert visitor.get("/ui/route").status_code == 303


def age_sessions(database_url: str, column: str, *, hours: float) -> None:
    """Move a time of every UI session: what the clock would do, without waiting for it."""
    from datetime import UTC, datetime, timedelta

    engine = make_engine(database_url)
    with engine.begin() as connection:
        moment = datetime.now(UTC) + timedelta(hours=hours)
        connection.execute(update(UiSession).values({column: moment}))  # typed, as the service writes it
    engine.dispose()


class TestCsrf:
    def test_login_without_the_token_is_refused(self, visitor: Visitor, make_user: UserMaker) -> None:
        name, password = make_user("nocsrf")
        visitor.get("/ui/login")
        response = visitor.post("/ui/login", {"username": name, "password": password})
        assert response.status_code == 403
        assert "Lomake on vanhentunut" in response.text
        assert "text/html" in response.headers["content-type"]

    def test_a_token_of_another_session_is_refused(
        self, visitor: Visitor, new_visitor: VisitorMaker, make_user: UserMaker, database_url: str
    ) -> None:
        visitor.login(*make_user("victim"))
        attacker = new_visitor()
        attacker.login(*make_user("attacker"))
        stolen = attacker.token("/ui/route")
        response = visitor.route(csrf_token=stolen, customer_id=IDENTITY_CODE)
        assert response.status_code == 403
        assert count_rows(database_url) == 0

    def test_a_form_without_a_session_cookie_is_refused(self, server: Server) -> None:
        response = httpx.post(f"{server.base_url}/ui/logout", data={"csrf_token": "x"})
        assert response.status_code == 403


class TestSecurityHeaders:
    def test_pages_forbid_inline_scripts_framing_sniffing_and_caching(self, visitor: Visitor) -> None:
        headers = visitor.get("/ui/login").headers
        policy = headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["cache-control"] == "no-store"

    def test_pages_have_no_inline_script_or_style(self, visitor: Visitor, make_user: UserMaker) -> None:
        visitor.login(*make_user("inline"))
        for path in ("/ui/login", "/ui/route?event_type=career_guidance", "/ui/decisions"):
            page = visitor.get(path).text
            assert "<script>" not in page
            assert " style=" not in page
            assert "<style" not in page

    def test_the_audit_pages_and_the_override_form_have_no_inline_script_or_style(
        self, visitor: Visitor, api: httpx.Client, make_key: KeyMaker, make_user: UserMaker
    ) -> None:
        decision_id = api.post("/v1/events", json=oeo_start(), headers=make_key()).json()["decision_id"]
        visitor.login(*make_user("inline-admin", role="admin"))
        for path in (f"/ui/decisions/{decision_id}", *AUDIT_PAGES[:1], *AUDIT_PAGES[2:3], *AUDIT_PAGES[4:]):
            page = visitor.get(path).text
            assert "<script>" not in page
            assert " style=" not in page
            assert "<style" not in page

    def test_the_script_is_served_from_the_app(self, visitor: Visitor) -> None:
        response = visitor.get("/ui/static/reitti.js")
        assert response.status_code == 200
        assert "javascript" in response.headers["content-type"]
        assert response.headers["x-content-type-options"] == "nosniff"

    def test_the_api_keeps_its_own_answers(self, server: Server) -> None:
        response = httpx.get(f"{server.base_url}/v1/decisions/nope")
        assert response.headers["content-type"] == "application/problem+json"
        assert "content-security-policy" not in response.headers

    def test_the_root_goes_to_the_ui(self, server: Server) -> None:
        response = httpx.get(f"{server.base_url}/")
        assert response.status_code == 303
        assert response.headers["location"] == "/ui"


class TestApiDocs:
    """/docs is Swagger UI served by this server: no CDN, no inline script, the UI's headers."""

    def test_docs_reference_no_other_host_and_run_no_inline_script(self, server: Server) -> None:
        response = httpx.get(f"{server.base_url}/docs")
        assert response.status_code == 200
        page = response.text
        assert "SwaggerUIBundle" not in page  # started by a file, not inline
        assert "<script>" not in page
        assert " style=" not in page
        assert "<style" not in page
        assert not re.search(r"(?i)(https?:)?//[a-z0-9.-]+", page), "an external host in /docs"
        assert 'data-url="/openapi.json"' in page

    def test_every_asset_of_docs_loads_from_this_server(self, server: Server) -> None:
        page = httpx.get(f"{server.base_url}/docs").text
        assets = re.findall(r'(?:src|href)="([^"]+)"', page)
        assert {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css", "/ui/static/docs.js"} <= set(assets)
        for asset in assets:
            assert asset.startswith("/")
            assert not asset.startswith("//")
            response = httpx.get(f"{server.base_url}{asset}")
            assert response.status_code == 200, asset
            assert response.content, asset
        script = httpx.get(f"{server.base_url}/ui/static/docs.js")
        assert "javascript" in script.headers["content-type"]
        assert "SwaggerUIBundle(" in script.text

    def test_docs_and_their_assets_get_the_uis_security_headers(self, server: Server) -> None:
        for path in ("/docs", "/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"):
            headers = httpx.get(f"{server.base_url}{path}").headers
            policy = headers["content-security-policy"]
            assert "default-src 'none'" in policy
            assert "script-src 'self'" in policy
            assert "unsafe-inline" not in policy
            assert "frame-ancestors 'none'" in policy
            assert "connect-src 'self'" in policy  # to read /openapi.json and to try the API out
            assert headers["x-content-type-options"] == "nosniff"
            assert headers["x-frame-options"] == "DENY"
        assert httpx.get(f"{server.base_url}/docs").headers["cache-control"] == "no-store"

    def test_redoc_is_gone_and_the_openapi_document_lists_no_page(self, server: Server) -> None:
        assert httpx.get(f"{server.base_url}/redoc").status_code == 404
        response = httpx.get(f"{server.base_url}/openapi.json")
        assert "content-security-policy" not in response.headers
        paths = response.json()["paths"]
        assert not [path for path in paths if path.startswith(("/docs", "/ui", "/favicon"))]


class TestFavicon:
    def test_the_favicon_is_served_and_linked(self, visitor: Visitor) -> None:
        response = visitor.get("/favicon.ico")
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/x-icon"
        assert response.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
        assert '<link rel="icon" href="/favicon.ico"' in visitor.get("/ui/login").text


class TestRouteOverHttp:
    def test_the_decision_is_the_apis_with_the_coach_as_client_and_the_id_as_its_pseudonym(
        self, visitor: Visitor, make_user: UserMaker, database_url: str
    ) -> None:
        visitor.login(*make_user("router"))
        response = visitor.route(customer_id=IDENTITY_CODE, language="fi")
        assert response.status_code == 303
        page = visitor.get(response.headers["location"])
        assert IDENTITY_CODE not in page.text
        engine = make_engine(database_url)
        with engine.connect() as connection:
            row = connection.execute(select(Decision.client, Decision.customer_pseudonym, Decision.handler_unit)).one()
        engine.dispose()
        assert row == ("ui:router", pseudonymise(TEST_PSEUDONYM_KEY.encode(), IDENTITY_CODE), "central-oeo")

    def test_sending_the_same_form_twice_makes_one_decision(
        self, visitor: Visitor, make_user: UserMaker, database_url: str
    ) -> None:
        visitor.login(*make_user("twice"))
        page = visitor.get("/ui/route?event_type=oeo.start").text
        form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
        form.update(occurred_at="2025-03-03T09:15", home_municipality="244", customer_id=IDENTITY_CODE)
        first, second = visitor.post("/ui/route", form), visitor.post("/ui/route", form)
        assert first.headers["location"] == second.headers["location"]
        assert count_rows(database_url) == 1

    def test_an_invalid_identity_code_is_refused_at_its_field_and_not_shown_back(
        self, visitor: Visitor, make_user: UserMaker, database_url: str
    ) -> None:
        visitor.login(*make_user("typo"))
        response = visitor.route(customer_id="131052-308X")
        assert response.status_code == 422
        assert 'id="customer_id-error"' in response.text
        assert "131052-308X" not in response.text
        assert count_rows(database_url) == 0

    def test_a_customer_of_another_municipality_is_refused_at_its_field_and_nothing_is_stored(
        self, visitor: Visitor, make_user: UserMaker, database_url: str
    ) -> None:
        # Kempele's coach; an Oulu customer whose handler is a central unit: a decision the
        # coach could not read back (it would be a 404), so it is not made.
        visitor.login(*make_user("elsewhere"))
        response = visitor.route(customer_id=IDENTITY_CODE, home_municipality="564")
        assert response.status_code == 422
        assert 'id="home_municipality-error"' in response.text
        assert "Reititä vain oman kuntasi asiakkaita." in response.text
        assert count_rows(database_url) == 0
        assert visitor.route(customer_id=IDENTITY_CODE, home_municipality="244").status_code == 303

    def test_only_a_coach_routes(self, visitor: Visitor, make_user: UserMaker) -> None:
        visitor.login(*make_user("auditor", role="auditor"))
        assert visitor.get("/ui/route").status_code == 403


class TestScope:
    def test_a_coach_of_ii_gets_404_for_a_kempele_decision_in_the_chosen_language(
        self, visitor: Visitor, api: httpx.Client, make_key: KeyMaker, make_user: UserMaker
    ) -> None:
        decision = api.post("/v1/events", json=oeo_start(), headers=make_key()).json()
        visitor.login(*make_user("ii", municipality="139"))
        response = visitor.get(f"/ui/decisions/{decision['decision_id']}")
        assert response.status_code == 404
        assert "Sivua ei löydy" in response.text
        visitor.get("/ui/lang/en")
        assert "Not found" in visitor.get(f"/ui/decisions/{decision['decision_id']}").text
        assert decision["decision_id"] not in visitor.get("/ui/decisions").text

    def test_a_coach_of_kempele_and_an_auditor_see_it(
        self, new_visitor: VisitorMaker, api: httpx.Client, make_key: KeyMaker, make_user: UserMaker
    ) -> None:
        decision = api.post("/v1/events", json=oeo_start(), headers=make_key()).json()
        for name, role in (("kempele", "coach"), ("auditor", "auditor")):
            visitor = new_visitor()
            visitor.login(*make_user(name, role=role))
            assert visitor.get(f"/ui/decisions/{decision['decision_id']}").status_code == 200
            assert decision["decision_id"] in visitor.get("/ui/decisions").text

    def test_a_note_is_shown_in_the_users_language_only(
        self, visitor: Visitor, api: httpx.Client, make_key: KeyMaker, make_user: UserMaker
    ) -> None:
        body = oeo_start(event_type="job_search_coaching")
        body["customer"] = {"type": "jobseeker", "id": "131052-308T", "home_municipality": "091"}
        decision = api.post("/v1/events", json=body, headers=make_key()).json()
        visitor.login(*make_user("auditor", role="auditor"))
        finnish = visitor.get(f"/ui/decisions/{decision['decision_id']}").text
        visitor.get("/ui/lang/en")
        english = visitor.get(f"/ui/decisions/{decision['decision_id']}").text
        # The auditor's page also shows the decision's JSON in the chain link: look at the list.
        assert "<li>Muun työllisyysalueen työnhakija voi osallistua" in finnish
        assert "<li>A jobseeker of another area" not in finnish
        assert "<li>A jobseeker of another area may take part" in english
        assert "<li>Muun työllisyysalueen" not in english
        assert "<li>interpretation:" not in finnish + english

    def test_a_coachs_reads_in_the_ui_are_in_the_access_log(
        self, new_visitor: VisitorMaker, api: httpx.Client, make_key: KeyMaker, make_user: UserMaker
    ) -> None:
        decision = api.post("/v1/events", json=oeo_start(), headers=make_key()).json()
        kempele, ii = new_visitor(), new_visitor()
        kempele.login(*make_user("kempele-reader", role="coach"))
        ii.login(*make_user("ii-reader", role="coach", municipality="139"))
        assert kempele.get(f"/ui/decisions/{decision['decision_id']}").status_code == 200
        assert kempele.get("/ui/decisions").status_code == 200
        assert ii.get(f"/ui/decisions/{decision['decision_id']}").status_code == 404
        entries = api.get("/v1/audit/access", headers=make_key(role="admin", name="admin")).json()["items"]
        seen = {(e["key_name"], e["action"], e.get("decision_id"), e["rows"]) for e in entries}
        assert ("ui:kempele-reader", "decision", decision["decision_id"], 1) in seen
        assert ("ui:ii-reader", "decision", decision["decision_id"], 0) in seen
        assert any(name == "ui:kempele-reader" and action == "list" for name, action, _, _ in seen)

    def test_the_admin_page_lists_keys_and_users_for_admins_only(
        self, new_visitor: VisitorMaker, make_key: KeyMaker, make_user: UserMaker
    ) -> None:
        make_key(name="ura-integration")
        admin, coach = new_visitor(), new_visitor()
        admin.login(*make_user("admin", role="admin"))
        coach.login(*make_user("coach"))
        page = admin.get("/ui/admin")
        assert page.status_code == 200
        assert "ura-integration" in page.text
        assert "scrypt$" not in page.text
        assert coach.get("/ui/admin").status_code == 403

    def test_the_last_day_a_date_can_hold_is_a_filter_like_any_other(
        self, visitor: Visitor, make_user: UserMaker
    ) -> None:
        visitor.login(*make_user("lastday"))
        assert visitor.get("/ui/decisions?occurred_to=9999-12-31").status_code == 200

    def test_bad_filters_are_shown_at_their_field(self, visitor: Visitor, make_user: UserMaker) -> None:
        visitor.login(*make_user("filters"))
        response = visitor.get("/ui/decisions?occurred_from=yesterday")
        assert response.status_code == 422
        assert 'id="f-occurred_from-error"' in response.text


class TestTexts:
    def test_both_catalogues_have_the_same_keys(self) -> None:
        assert set(catalogue("fi")) == set(catalogue("en"))

    def test_every_key_the_code_and_templates_name_is_in_the_catalogue(self) -> None:
        ui = REPOSITORY / "app" / "web" / "ui"
        sources = [*(ui / "templates").glob("*.html"), *ui.glob("*.py")]
        named = {
            key
            for path in sources
            # A whole key, not the prefix of one built at run time ("override.reasons." ~ reason).
            for key in re.findall(r"""\bt\(\s*["']([a-z_]+(?:\.[a-z0-9_]+)+)["']""", path.read_text())
        }
        assert named
        assert named - set(catalogue("fi")) == set()

    def test_every_override_reason_and_kind_of_read_has_a_name_in_both_languages(self) -> None:
        for language in ("fi", "en"):
            assert {f"override.reasons.{reason}" for reason in OverrideReason} <= set(catalogue(language))
            assert {f"audit.actions.{action}" for action in AccessAction} <= set(catalogue(language))

    def test_every_attribute_and_choice_has_a_label_in_both_languages(self, rules: Rules) -> None:
        for language in ("fi", "en"):
            messages = catalogue(language)
            for name, spec in rules.registry.vocabulary.items():
                assert f"attributes.{name}.label" in messages, (language, name)
                if spec.type is AttributeType.choice:
                    for value in spec.values:
                        assert f"attributes.{name}.values.{value}" in messages, (language, name, value)


class TestMunicipalityInASentence:
    """Finnish inflects a name in a sentence: "Kempeleen asukkaat", never "Kunnan Kempele asukkaat"."""

    AREA_GENITIVES = {
        "564": "Oulun",
        "072": "Hailuodon",
        "139": "Iin",
        "244": "Kempeleen",
        "425": "Limingan",
        "436": "Lumijoen",
        "494": "Muhoksen",
        "615": "Pudasjärven",
        "859": "Tyrnävän",
        "889": "Utajärven",
        "785": "Vaalan",
    }

    def test_the_registry_keeps_the_genitive_of_every_municipality_of_the_area(self, rules: Rules) -> None:
        for ruleset in rules.rulesets:
            assert ruleset.area_municipalities == set(self.AREA_GENITIVES)
        assert {code: rules.registry.genitives.get(code) for code in self.AREA_GENITIVES} == self.AREA_GENITIVES

    def test_every_coachs_scope_names_the_municipality_in_the_genitive(self, rules: Rules) -> None:
        fi, en = Translator("fi", rules.registry), Translator("en", rules.registry)
        for code, genitive in self.AREA_GENITIVES.items():
            text = fi.municipality_scope("decisions.scope_coach", code)
            assert text.startswith(f"{genitive} asukkaita koskevat"), text
            assert "Kunnan" not in text
            assert f"residents of {rules.registry.municipalities[code]} " in en.municipality_scope(
                "decisions.scope_coach", code
            )

    def test_a_municipality_without_a_genitive_is_named_as_it_is_in_a_sentence_that_takes_it(
        self, rules: Rules
    ) -> None:
        assert "091" not in rules.registry.genitives
        text = Translator("fi", rules.registry).municipality_scope("decisions.scope_coach", "091")
        assert "joiden kotikunta on Helsinki," in text

    def test_the_kempele_coachs_decision_list_says_kempeleen(self, visitor: Visitor, make_user: UserMaker) -> None:
        visitor.login(*make_user("kempeleen"))
        page = html.unescape(visitor.get("/ui/decisions").text)
        assert "Kempeleen asukkaita koskevat ja sen omavalmentajien käsittelemät päätökset" in page
        assert "Kunnan Kempele" not in page
        visitor.get("/ui/lang/en")
        assert "Decisions about residents of Kempele and those its coaches handle" in visitor.get("/ui/decisions").text

    def test_names_of_fields_and_values_in_a_condition_are_quoted_not_lower_cased(
        self, visitor: Visitor, make_user: UserMaker
    ) -> None:
        visitor.login(*make_user("ehto"))
        page = html.unescape(visitor.get("/ui/route?event_type=career_guidance").text)
        assert "Pakollinen, kun ”Psykologinen arviointi” on ”Ei”." in page
        visitor.get("/ui/lang/en")
        page = html.unescape(visitor.get("/ui/route?event_type=career_guidance").text)
        assert "Required when “Psychological assessment” is “No”." in page


class TestThePlanBesideADecision:
    def test_the_plans_lists_are_shown_as_lists(
        self, visitor: Visitor, api: httpx.Client, make_key: KeyMaker, make_user: UserMaker
    ) -> None:
        attributes = {
            "integration_plan_entitled": True,
            "integration_period_exceeded": False,
            "needs_integration_services": True,
        }
        body = oeo_start("ura-2025-000777", event_type="integration.eligibility", attributes=attributes)
        decision = api.post("/v1/events", json=body, headers=make_key()).json()
        assert decision["basis"] == ["2.2.6"]
        visitor.login(*make_user("listat"))
        page = html.unescape(visitor.get(f"/ui/decisions/{decision['decision_id']}").text)
        section = page[page.index('data-section="2.2.6"') :]
        section = section[: section.index("</section>")]
        assert "<li>kotoutumislain mukainen osaamisen ja kotoutumisen palvelutarpeen arviointi;</li>" in section
        assert "<li>Kielitestaukset.</li>" in section
        assert " o " not in section
        assert section.count('<ul class="bullets">') == 5


class TestLanguageSwitchAfterAForm:
    SWITCH = re.compile(r'href="/ui/lang/en\?next=([^"]+)"')

    def _next(self, visitor: Visitor, path: str) -> str:
        match = self.SWITCH.search(visitor.get(path).text)
        assert match, path
        return unquote(html.unescape(match.group(1)))

    def test_the_stored_and_recorded_banners_do_not_come_back_in_the_other_language(
        self, visitor: Visitor, api: httpx.Client, make_key: KeyMaker, make_user: UserMaker
    ) -> None:
        decision_id = _kempele_decision(api, make_key)
        visitor.login(*make_user("kielikytkin"))
        page = f"/ui/decisions/{decision_id}"
        assert self._next(visitor, f"{page}?created") == page
        assert self._next(visitor, f"{page}?overridden") == page
        back = visitor.get(f"/ui/lang/en?next={quote(self._next(visitor, f'{page}?created'))}")
        assert back.headers["location"] == page
        assert "The decision has been stored." not in visitor.get(back.headers["location"]).text

    def test_the_rest_of_the_query_goes_along(self, visitor: Visitor, make_user: UserMaker) -> None:
        visitor.login(*make_user("kyselyt"))
        path = "/ui/decisions?event_type=oeo.start&customership=central-oeo"
        assert self._next(visitor, path) == path
        assert self._next(visitor, "/ui/decisions?event_type=oeo.start&created") == "/ui/decisions?event_type=oeo.start"


class TestRuleIds:
    def test_a_rule_id_may_wrap_after_its_dots_and_underscores_only(
        self, visitor: Visitor, api: httpx.Client, make_key: KeyMaker, make_user: UserMaker
    ) -> None:
        attributes = {
            "integration_plan_entitled": True,
            "integration_period_exceeded": False,
            "needs_integration_services": True,
        }
        body = oeo_start("ura-2025-000778", event_type="integration.eligibility", attributes=attributes)
        decision = api.post("/v1/events", json=body, headers=make_key()).json()
        assert decision["rule"]["id"] == "integration.central_customer"
        wrapped = '<code class="id">integration.<wbr>central_<wbr>customer</code>'
        visitor.login(*make_user("saanto", role="admin"))
        assert wrapped in visitor.get("/ui/decisions").text
        assert wrapped in visitor.get("/ui/audit/decisions").text
        assert (
            'id="rule-id">integration.<wbr>central_<wbr>customer</code>'
            in visitor.get(f"/ui/decisions/{decision['decision_id']}").text
        )


class TestAccounts:
    def test_passwords_are_kept_as_salted_scrypt_hashes(self) -> None:
        first, second = hash_password("a long password"), hash_password("a long password")
        assert first != second
        assert first.startswith("scrypt$")
        assert verify_password("a long password", first)
        assert not verify_password("a long passworD", first)

    def test_users_create_reads_the_password_from_stdin(self, tmp_path: Path) -> None:
        from tests.conftest import migrate

        url = f"sqlite:///{tmp_path / 'reitti.db'}"
        migrate(url)
        env = {"REITTI_DATABASE_URL": url, "PATH": "/usr/bin:/bin"}
        command = [sys.executable, "-m", "app.cli", "users", "create", "--role", "coach", "--municipality", "244"]
        made = subprocess.run(
            [*command, "--name", "kaisa", "--password-stdin"], input="a long enough password\n",
            capture_output=True, text=True, env=env, cwd=REPOSITORY, check=False,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        short = subprocess.run(
            [*command, "--name", "kalle", "--password-stdin"], input="short\n",
            capture_output=True, text=True, env=env, cwd=REPOSITORY, check=False,
        )  # fmt: skip
        assert short.returncode == 2
        assert "at least 12 characters" in short.stderr
        engine = make_engine(url)
        with engine.connect() as connection:
            stored = connection.execute(text("SELECT username, password_hash FROM users")).all()
        engine.dispose()
        assert [name for name, _ in stored] == ["kaisa"]
        assert verify_password("a long enough password", stored[0][1])

    def test_the_session_secret_is_kept_beside_sqlite_and_required_elsewhere(self, tmp_path: Path) -> None:
        with pytest.raises(RuntimeError, match="REITTI_SESSION_SECRET must be set"):
            Settings(database_url="postgresql://postgres@127.0.0.1/reitti").resolve_session_secret()
        settings = Settings(database_url=f"sqlite:///{tmp_path / 'reitti.db'}")
        assert settings.resolve_session_secret() == settings.resolve_session_secret()
        assert (tmp_path / "reitti.db.session-secret").stat().st_mode & 0o777 == 0o600
        assert Settings(session_secret="given").resolve_session_secret() == b"given"

    def test_no_api_key_may_take_a_ui_clients_name(self, tmp_path: Path) -> None:
        from tests.conftest import migrate

        url = f"sqlite:///{tmp_path / 'reitti.db'}"
        migrate(url)
        refused = subprocess.run(
            [sys.executable, "-m", "app.cli", "keys", "create", "--role", "integration", "--name", "ui:kaisa"],
            capture_output=True, text=True, env={"REITTI_DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
            cwd=REPOSITORY, check=False,
        )  # fmt: skip
        assert refused.returncode == 2
        assert "ui:" in refused.stderr


def test_the_session_signature_is_an_hmac_of_the_payload() -> None:
    session = WebSession(sid="abc")
    payload, signature = encode_session(b"k", session).split(".")
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    expected = hmac.new(b"k", b"session|" + raw, hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)) == expected


# --- overrides and chain links on a decision's page ---------------------------------------


def _overrides(database_url: str) -> list[tuple[str, str, str | None, str]]:
    """(recorded_by, recorded_role, customership_unit, reason) of every stored override."""
    engine = make_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(select(Override)).all()
    engine.dispose()
    return [(row.recorded_by, row.recorded_role, row.customership_unit, row.reason) for row in rows]


def _field_errors(page: str) -> dict[str, str]:
    """The errors a page shows at its fields, by the field's id, as text."""
    found = re.findall(r'<p class="field-error" id="([^"]+)-error">(.*?)</p>', page, re.S)
    return {name: re.sub(r"<[^>]+>", "", text).strip() for name, text in found}


def _kempele_decision(api: httpx.Client, make_key: KeyMaker, event_id: str = "ura-2025-000123") -> str:
    """A decision about a customer of Kempele, handled centrally (Ii's coaches may not see it)."""
    response = api.post("/v1/events", json=oeo_start(event_id), headers=make_key())
    assert response.status_code == 201, response.text
    decision_id: str = response.json()["decision_id"]
    return decision_id


class TestOverrideOverHttp:
    def _form(self, visitor: Visitor, decision_id: str, **fields: str) -> httpx.Response:
        token = visitor.token(f"/ui/decisions/{decision_id}")
        return visitor.post(f"/ui/decisions/{decision_id}/overrides", {"csrf_token": token, **fields})

    def test_a_coach_records_an_override_as_the_api_would_with_the_ui_client_name(
        self, visitor: Visitor, api: httpx.Client, make_key: KeyMaker, make_user: UserMaker, database_url: str
    ) -> None:
        decision_id = _kempele_decision(api, make_key)
        visitor.login(*make_user("kaisa"))
        sent = self._form(visitor, decision_id, customership="local-244", reason="customer_request", text="Sovittu.")
        assert sent.status_code == 303
        assert sent.headers["location"] == f"/ui/decisions/{decision_id}?overridden#overrides"
        assert _overrides(database_url) == [("ui:kaisa", "coach", "local-244", "customer_request")]
        # The same record the API lists, chained after the decision.
        listed = api.get(f"/v1/decisions/{decision_id}/overrides", headers=make_key(role="auditor", name="a")).json()
        assert [(o["recorded_by"], o["seq"], o["text"]) for o in listed] == [("ui:kaisa", 2, "Sovittu.")]
        assert chain_verifies(database_url)[:2] == (True, 2)
        page = visitor.get(sent.headers["location"]).text
        assert "Poikkeama on kirjattu." in page
        assert "Asiakkaan pyynnöstä" in page
        assert "Sovittu." in page

    def test_a_missing_reason_and_no_new_unit_are_said_at_their_fields_and_nothing_is_stored(
        self, visitor: Visitor, api: httpx.Client, make_key: KeyMaker, make_user: UserMaker, database_url: str
    ) -> None:
        decision_id = _kempele_decision(api, make_key)
        visitor.login(*make_user("kaisa"))
        refused = self._form(visitor, decision_id, reason="", text="kept")
        assert refused.status_code == 422
        errors = _field_errors(refused.text)
        assert errors["override-reason"].endswith("Tämä tieto on pakollinen.")
        assert errors["override-change"].endswith("Valitse uusi käsittelijä, uusi asiakkuus tai molemmat.")
        assert ">kept</textarea>" in refused.text  # what was typed is kept
        visitor.get("/ui/lang/en")
        refused = self._form(visitor, decision_id, handler="local-244", reason="")
        assert _field_errors(refused.text)["override-reason"].endswith("This is required.")
        assert "override-change" not in _field_errors(refused.text)
        assert _overrides(database_url) == []

    def test_the_unit_the_decision_already_has_and_an_unknown_unit_are_refused_at_their_fields(
        self, visitor: Visitor, api: httpx.Client, make_key: KeyMaker, make_user: UserMaker, database_url: str
    ) -> None:
        decision_id = _kempele_decision(api, make_key)
        visitor.login(*make_user("kaisa"))
        visitor.get("/ui/lang/en")
        same = self._form(visitor, decision_id, handler="central-oeo", customership="nowhere", reason="other")
        assert same.status_code == 422
        errors = _field_errors(same.text)
        assert errors["override-handler"].endswith("This unit already handles the decision.")
        assert errors["override-customership"].endswith("This value is not valid.")
        long = self._form(visitor, decision_id, handler="local-244", reason="other", text="x" * 2001)
        assert _field_errors(long.text)["override-text"].endswith("at most 2000 characters.")
        assert _overrides(database_url) == []

    def test_a_coach_of_ii_cannot_override_a_kempele_decision(
        self, visitor: Visitor, api: httpx.Client, make_key: KeyMaker, make_user: UserMaker, database_url: str
    ) -> None:
        decision_id = _kempele_decision(api, make_key)
        visitor.login(*make_user("iikka", municipality="139"))
        token = visitor.token("/ui/decisions")
        data = {"csrf_token": token, "customership": "local-139", "reason": "customer_moved"}
        assert visitor.post(f"/ui/decisions/{decision_id}/overrides", data).status_code == 404
        assert visitor.post(f"/ui/decisions/{decision_id}/overrides", {**data, "reason": ""}).status_code == 404
        assert _overrides(database_url) == []

    def test_an_auditor_sees_the_overrides_but_no_form_and_may_not_record_one(
        self, new_visitor: VisitorMaker, api: httpx.Client, make_key: KeyMaker, make_user: UserMaker, database_url: str
    ) -> None:
        decision_id = _kempele_decision(api, make_key)
        coach, auditor = new_visitor(), new_visitor()
        coach.login(*make_user("kaisa"))
        self._form(coach, decision_id, customership="local-244", reason="agreed_between_units")
        auditor.login(*make_user("tarja", role="auditor"))
        page = auditor.get(f"/ui/decisions/{decision_id}").text
        assert "Yksiköiden kesken sovittu" in page
        assert f'action="/ui/decisions/{decision_id}/overrides"' not in page
        refused = self._form(auditor, decision_id, customership="local-139", reason="other")
        assert refused.status_code == 403
        assert len(_overrides(database_url)) == 1

    def test_an_override_without_this_sessions_token_is_refused(
        self, visitor: Visitor, api: httpx.Client, make_key: KeyMaker, make_user: UserMaker, database_url: str
    ) -> None:
        decision_id = _kempele_decision(api, make_key)
        visitor.login(*make_user("kaisa"))
        data = {"csrf_token": "forged", "customership": "local-244", "reason": "other"}
        assert visitor.post(f"/ui/decisions/{decision_id}/overrides", data).status_code == 403
        assert _overrides(database_url) == []


class TestChainLinkOverHttp:
    def test_an_auditor_sees_the_decisions_link_and_its_hash_recomputes_from_the_page(
        self, visitor: Visitor, api: httpx.Client, make_key: KeyMaker, make_user: UserMaker
    ) -> None:
        decision_id = _kempele_decision(api, make_key)
        visitor.login(*make_user("tarja", role="auditor"))
        page = visitor.get(f"/ui/decisions/{decision_id}").text
        shown = {
            name: html.unescape(re.search(rf'id="link-{name}"[^>]*>(.*?)</', page, re.S).group(1))  # type: ignore[union-attr]
            for name in ("seq", "prev-hash", "hash", "document")
        }
        recomputed = hashlib.sha256((shown["prev-hash"] + shown["document"]).encode()).hexdigest()
        assert recomputed == shown["hash"]
        link = api.get(f"/v1/decisions/{decision_id}/link", headers=make_key(role="auditor", name="a")).json()
        assert (int(shown["seq"]), shown["hash"], shown["document"]) == (link["seq"], link["hash"], link["document"])
        assert (
            "Linkin tiiviste vastaa päätöstä sellaisena kuin se on nyt tallennettu, "
            "ja sen allekirjoitus osoittaa, että tämä palvelu kirjoitti sen." in page
        )

    def test_an_edited_decision_is_shown_as_not_matching_its_link(
        self, visitor: Visitor, api: httpx.Client, make_key: KeyMaker, make_user: UserMaker, database_url: str
    ) -> None:
        decision_id = _kempele_decision(api, make_key)
        with without_append_only_triggers(database_url) as connection:
            connection.execute(
                text("UPDATE decisions SET rule_id = 'edited' WHERE decision_id = :id"), {"id": decision_id}
            )
        visitor.login(*make_user("tarja", role="auditor"))
        page = visitor.get(f"/ui/decisions/{decision_id}").text
        assert "Linkin tiiviste tai allekirjoitus ei vastaa päätöstä" in page

    def test_a_coach_does_not_see_the_link(
        self, visitor: Visitor, api: httpx.Client, make_key: KeyMaker, make_user: UserMaker
    ) -> None:
        decision_id = _kempele_decision(api, make_key)
        visitor.login(*make_user("kaisa"))
        page = visitor.get(f"/ui/decisions/{decision_id}").text
        assert 'id="chain-link"' not in page
        assert 'id="overrides"' in page

    def test_the_pages_reads_are_in_the_access_log_as_the_apis_would_be(
        self, visitor: Visitor, api: httpx.Client, make_key: KeyMaker, make_user: UserMaker
    ) -> None:
        decision_id = _kempele_decision(api, make_key)
        visitor.login(*make_user("tarja", role="auditor"))
        visitor.get(f"/ui/decisions/{decision_id}")
        entries = api.get("/v1/audit/access", params={"who": "ui:tarja"}, headers=make_key(role="admin", name="ad"))
        logged = sorted((e["action"], e["decision_id"], e["rows"]) for e in entries.json()["items"])
        assert logged == [("decision", decision_id, 1), ("link", decision_id, 1), ("overrides", decision_id, 0)]


# --- the auditor's pages ----------------------------------------------------------------------

OTHER_CODE = "010594Y9032"
AUDIT_PAGES = ("/ui/audit/decisions", "/ui/audit/export", "/ui/audit/chain", "/ui/audit/checkpoint", "/ui/audit/access")


def _log(api: httpx.Client, make_key: KeyMaker) -> dict[str, list[str]]:
    """Five decisions by municipality and event type: Kempele's oeo.start (two customers), Ii's and Oulu's."""
    key = make_key()
    made: dict[str, list[str]] = {"244": [], "139": [], "564": [], "eu": []}
    for number, (home, code) in enumerate([("244", IDENTITY_CODE), ("244", OTHER_CODE), ("139", IDENTITY_CODE),
                                           ("564", IDENTITY_CODE)]):  # fmt: skip
        body = oeo_start(f"log-{number}")
        body["customer"].update(home_municipality=home, id=code)
        made[home].append(api.post("/v1/events", json=body, headers=key).json()["decision_id"])
    made["eu"].append(
        api.post("/v1/events", json=oeo_start("log-eu", event_type="eu_job_search"), headers=key).json()["decision_id"]
    )
    return made


def _listed(page: str) -> list[str]:
    return re.findall(r'<tr data-decision="([^"]+)">', page)


class TestAuditPagesOverHttp:
    def test_only_auditors_and_admins_reach_the_audit_pages_and_see_them_in_the_menu(
        self, new_visitor: VisitorMaker, make_user: UserMaker
    ) -> None:
        for name, role, allowed in (("kaisa", "coach", False), ("tarja", "auditor", True), ("aapo", "admin", True)):
            visitor = new_visitor()
            visitor.login(*make_user(name, role=role))
            statuses = {path: visitor.get(path).status_code for path in AUDIT_PAGES}
            assert statuses == dict.fromkeys(AUDIT_PAGES, 200 if allowed else 403), name
            menu = visitor.get("/ui/decisions").text
            assert ('href="/ui/audit/chain"' in menu) is allowed
            posted = {
                path: visitor.post(path, {"csrf_token": visitor.token("/ui/decisions")}).status_code
                for path in ("/ui/audit/decisions", "/ui/audit/export", "/ui/audit/chain")
            }
            assert all((status == 403) is not allowed for status in posted.values()), (name, posted)

    def test_a_visitor_is_sent_to_log_in(self, visitor: Visitor) -> None:
        response = visitor.get("/ui/audit/decisions?municipality=139")
        assert response.status_code == 303
        assert response.headers["location"] == "/ui/login?next=/ui/audit/decisions%3Fmunicipality%3D139"

    def test_the_log_search_selects_what_the_apis_filters_select(
        self, visitor: Visitor, api: httpx.Client, make_key: KeyMaker, make_user: UserMaker
    ) -> None:
        made = _log(api, make_key)
        visitor.login(*make_user("tarja", role="auditor"))
        auditor = make_key(role="auditor", name="auditor")
        for filters in ({"municipality": "244"}, {"municipality": "139"}, {"event_type": "eu_job_search"},
                        {"event_type": "oeo.start", "municipality": "564"}, {"handler": "central-eu"},
                        {"rule_id": "oeo.start", "ruleset": "2025-01-01"}, {}):  # fmt: skip
            page = visitor.get("/ui/audit/decisions", params=filters)
            assert page.status_code == 200
            expected = [
                d["decision_id"] for d in api.get("/v1/decisions", params=filters, headers=auditor).json()["items"]
            ]
            assert _listed(page.text) == expected, filters
        assert _listed(visitor.get("/ui/audit/decisions?municipality=139").text) == made["139"]
        assert len(_listed(visitor.get("/ui/audit/decisions").text)) == 5

    def test_days_are_finnish_and_both_ends_are_included(
        self, visitor: Visitor, api: httpx.Client, make_key: KeyMaker, make_user: UserMaker
    ) -> None:
        key = make_key()
        # 23.30 UTC on 2 March is 1.30 on 3 March in Finland.
        late = api.post("/v1/events", json=oeo_start("late", occurred_at="2025-03-02T23:30:00+00:00"), headers=key)
        visitor.login(*make_user("tarja", role="auditor"))
        day = {"occurred_from": "2025-03-03", "occurred_to": "2025-03-03"}
        assert _listed(visitor.get("/ui/audit/decisions", params=day).text) == [late.json()["decision_id"]]
        before = {"occurred_to": "2025-03-02"}
        assert _listed(visitor.get("/ui/audit/decisions", params=before).text) == []
        assert visitor.get("/ui/audit/decisions", params={"decided_to": "9999-12-31"}).status_code == 200

    def test_bad_filters_are_said_at_their_fields(self, visitor: Visitor, make_user: UserMaker) -> None:
        visitor.login(*make_user("tarja", role="auditor"))
        response = visitor.get("/ui/audit/decisions?municipality=Kempele&decided_from=eilen&cursor=zzz")
        assert response.status_code == 422
        assert set(_field_errors(response.text)) == {"f-decided_from"}
        response = visitor.get("/ui/audit/decisions?municipality=Kempele")
        assert _field_errors(response.text) == {"f-municipality": "Tämä arvo ei kelpaa."}
        response = visitor.get("/ui/audit/decisions?cursor=zzz")
        assert response.status_code == 422
        assert "Sivun osoite ei kelpaa." in response.text

    def test_pages_follow_the_cursor_over_the_whole_selection_once(
        self, visitor: Visitor, api: httpx.Client, make_key: KeyMaker, make_user: UserMaker
    ) -> None:
        key = make_key()
        made = [api.post("/v1/events", json=oeo_start(f"p{n}"), headers=key).json()["decision_id"] for n in range(27)]
        visitor.login(*make_user("tarja", role="auditor"))
        first = visitor.get("/ui/audit/decisions?municipality=244").text
        older = html.unescape(re.search(r'<a href="(/ui/audit/decisions\?[^"]+)" rel="next">', first).group(1))  # type: ignore[union-attr]
        assert "municipality=244" in older
        second = visitor.get(older).text
        assert _listed(first) + _listed(second) == made[::-1]
        assert 'rel="next"' not in second

    def test_one_customer_is_searched_by_a_post_and_the_code_is_nowhere_after(
        self, visitor: Visitor, api: httpx.Client, make_key: KeyMaker, make_user: UserMaker, database_url: str
    ) -> None:
        made = _log(api, make_key)
        visitor.login(*make_user("tarja", role="auditor"))
        token = visitor.token("/ui/audit/decisions")
        page = visitor.post("/ui/audit/decisions", {"csrf_token": token, "customer_id": OTHER_CODE})
        assert page.status_code == 200
        assert _listed(page.text) == [made["244"][1]]
        # Combined with the filters of the page it was sent from, and carried to the next page as a pseudonym.
        page = visitor.post(
            "/ui/audit/decisions", {"csrf_token": token, "customer_id": IDENTITY_CODE, "municipality": "139"}
        )
        assert _listed(page.text) == made["139"]
        pseudonym = pseudonymise(TEST_PSEUDONYM_KEY.encode(), IDENTITY_CODE)
        assert f'name="customer_pseudonym" value="{pseudonym}"' in page.text
        again = visitor.post("/ui/audit/decisions", {"csrf_token": token, "customer_pseudonym": pseudonym})
        assert sorted(_listed(again.text)) == sorted([made["244"][0], *made["139"], *made["564"], *made["eu"]])
        entries = api.get("/v1/audit/access", params={"who": "ui:tarja"}, headers=make_key(role="admin", name="ad"))
        assert pseudonym in [e["filters"].get("customer_pseudonym") for e in entries.json()["items"]]
        for response in (page, again, entries):
            assert IDENTITY_CODE not in response.text
            assert IDENTITY_CODE not in str(response.url)
        assert IDENTITY_CODE not in stored_text(database_url)

    def test_a_wrong_identity_code_is_said_at_its_field_without_being_shown_back(
        self, visitor: Visitor, make_user: UserMaker
    ) -> None:
        visitor.login(*make_user("tarja", role="auditor"))
        token = visitor.token("/ui/audit/decisions")
        wrong = visitor.post("/ui/audit/decisions", {"csrf_token": token, "customer_id": "131052-308X"})
        assert wrong.status_code == 422
        assert _field_errors(wrong.text)["customer_id"].startswith("Tunnus ei kelpaa.")
        assert "131052" not in wrong.text
        assert _listed(wrong.text) == []
        empty = visitor.post("/ui/audit/decisions", {"csrf_token": token, "customer_id": ""})
        assert _field_errors(empty.text)["customer_id"] == "Tämä tieto on pakollinen."

    def test_the_customer_search_needs_this_sessions_token(self, visitor: Visitor, make_user: UserMaker) -> None:
        visitor.login(*make_user("tarja", role="auditor"))
        assert visitor.post("/ui/audit/decisions", {"customer_id": IDENTITY_CODE}).status_code == 403

    def test_the_csv_export_has_every_row_the_filters_select_and_is_logged(
        self, visitor: Visitor, api: httpx.Client, make_key: KeyMaker, make_user: UserMaker
    ) -> None:
        made = _log(api, make_key)
        visitor.login(*make_user("tarja", role="auditor"))
        response = visitor.get("/ui/audit/export?municipality=244&event_type=oeo.start")
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        assert response.headers["content-disposition"] == 'attachment; filename="decisions.csv"'
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert [row["decision_id"] for row in rows] == made["244"][::-1]
        assert {(row["home_municipality"], row["event_type"]) for row in rows} == {("244", "oeo.start")}
        token = visitor.token("/ui/audit/decisions")
        by_customer = visitor.post("/ui/audit/export", {"csrf_token": token, "customer_id": OTHER_CODE})
        assert [row["decision_id"] for row in csv.DictReader(io.StringIO(by_customer.text))] == [made["244"][1]]
        assert IDENTITY_CODE not in by_customer.text
        entries = api.get(
            "/v1/audit/access", params={"who": "ui:tarja", "action": "export"}, headers=make_key(role="admin", name="a")
        ).json()["items"]
        assert sorted((e["rows"], e["filters"].get("municipality")) for e in entries) == [(1, None), (2, "244")]

    def test_an_export_with_a_bad_filter_is_the_search_page_with_the_error(
        self, visitor: Visitor, make_user: UserMaker
    ) -> None:
        visitor.login(*make_user("tarja", role="auditor"))
        response = visitor.get("/ui/audit/export?occurred_from=2025-13-01")
        assert response.status_code == 422
        assert "text/html" in response.headers["content-type"]
        assert "f-occurred_from" in _field_errors(response.text)


class TestChainPageOverHttp:
    def _verify(self, visitor: Visitor, checkpoint: str = "") -> httpx.Response:
        token = visitor.token("/ui/audit/chain")
        return visitor.post("/ui/audit/chain", {"csrf_token": token, "checkpoint": checkpoint})

    def test_the_page_shows_the_head_and_verifies_only_when_asked(
        self, visitor: Visitor, api: httpx.Client, make_key: KeyMaker, make_user: UserMaker
    ) -> None:
        _log(api, make_key)
        visitor.login(*make_user("tarja", role="auditor"))
        visitor.get("/ui/lang/en")
        page = visitor.get("/ui/audit/chain").text
        assert re.search(r'id="head-seq">5<', page)
        assert 'id="chain-status"' not in page
        result = self._verify(visitor)
        assert result.status_code == 200
        assert "The chain is intact." in result.text
        assert "5 links walked" in result.text
        assert re.search(r'id="intact-up-to">5<', result.text)

    def test_an_edited_decision_breaks_the_chain_at_its_link(
        self, visitor: Visitor, api: httpx.Client, make_key: KeyMaker, make_user: UserMaker, database_url: str
    ) -> None:
        made = _log(api, make_key)
        with without_append_only_triggers(database_url) as connection:
            edit = text("UPDATE decisions SET handler_unit = 'local-139' WHERE decision_id = :id")
            connection.execute(edit, {"id": made["139"][0]})
        visitor.login(*make_user("tarja", role="auditor"))
        result = self._verify(visitor).text
        assert "Ketju EI ole eheä: 1 havaintoa." in result
        assert re.search(r'id="intact-up-to">2<', result)
        assert f"<code>{made['139'][0]}</code>" in result

    def test_a_downloaded_checkpoint_pasted_back_finds_links_deleted_from_the_end(
        self, visitor: Visitor, api: httpx.Client, make_key: KeyMaker, make_user: UserMaker, database_url: str
    ) -> None:
        made = _log(api, make_key)
        visitor.login(*make_user("tarja", role="auditor"))
        download = visitor.get("/ui/audit/checkpoint")
        assert download.headers["content-disposition"] == 'attachment; filename="reitti-checkpoint-5.json"'
        kept = download.text
        assert json.loads(kept)["seq"] == 5
        checked = self._verify(visitor, kept).text
        assert "Ketju on eheä." in checked
        assert "Tarkistettu annettua tarkistuspistettä vasten." in checked
        with without_append_only_triggers(database_url) as connection:
            connection.execute(text("DELETE FROM audit_chain WHERE seq = 5"))
            connection.execute(text("DELETE FROM decisions WHERE decision_id = :id"), {"id": made["eu"][0]})
        assert "Ketju on eheä." in self._verify(visitor).text  # shorter, and still whole
        broken = self._verify(visitor, kept).text
        assert "Ketju EI ole eheä" in broken
        assert "links were deleted from the end" in broken

    def test_what_is_not_a_checkpoint_is_said_at_its_field(self, visitor: Visitor, make_user: UserMaker) -> None:
        visitor.login(*make_user("tarja", role="auditor"))
        for pasted in ("not json", '{"seq": 1}', "[1, 2]", '{"seq": 1, "hash": "x", "at": "y", "signature": "z"}'):
            refused = self._verify(visitor, pasted)
            assert refused.status_code == 422, pasted
            assert _field_errors(refused.text)["checkpoint"].startswith("Tämä ei ole tarkistuspiste.")
            assert 'id="chain-status"' not in refused.text


class TestAccessPageOverHttp:
    def test_the_access_log_shows_who_read_what_and_filters_by_who(
        self, new_visitor: VisitorMaker, api: httpx.Client, make_key: KeyMaker, make_user: UserMaker
    ) -> None:
        decision_id = _kempele_decision(api, make_key)
        coach, auditor = new_visitor(), new_visitor()
        coach.login(*make_user("kaisa"))
        coach.get(f"/ui/decisions/{decision_id}")
        auditor.login(*make_user("tarja", role="auditor"))
        auditor.get("/ui/audit/decisions?municipality=244")
        page = auditor.get("/ui/audit/access").text
        assert "<code>ui:kaisa</code>" in page
        assert "<code>ui:tarja</code>" in page
        mine = auditor.get("/ui/audit/access?who=ui%3Atarja").text
        assert "<code>ui:kaisa</code>" not in mine
        assert "<code>municipality=244</code>" in mine
        coaches = auditor.get("/ui/audit/access?role=coach&action=decision").text
        assert f"<code>{decision_id}</code>" in coaches
        assert "<code>ui:tarja</code>" not in coaches

    def test_bad_access_filters_are_said_at_their_fields(self, visitor: Visitor, make_user: UserMaker) -> None:
        visitor.login(*make_user("tarja", role="auditor"))
        response = visitor.get("/ui/audit/access?role=boss&from=2025-02-30&to=9999-12-31")
        assert response.status_code == 422
        assert set(_field_errors(response.text)) == {"a-from"}
        response = visitor.get("/ui/audit/access?role=boss&action=peek")
        assert set(_field_errors(response.text)) == {"a-role", "a-action"}
