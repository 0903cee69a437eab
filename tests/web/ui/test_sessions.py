"""UI sessions kept server-side: logout, disabling, a new password, idleness and age end them at once."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text

from app.access.sessions import SessionRules, find_session, open_session, remove_expired, settle
from app.config import REPOSITORY
from app.db import make_engine, make_sessions
from app.models import UiSession, User
from app.web.ui.auth import SESSION_COOKIE
from tests.conftest import TEST_PASSWORD, UserMaker
from tests.web.ui.test_pages import Visitor, VisitorMaker, age_sessions


def _reitti(database_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {"REITTI_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "app.cli", *args]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, env=env, cwd=REPOSITORY, check=False)


def _session_rows(database_url: str) -> int:
    engine = make_engine(database_url)
    with engine.connect() as connection:
        count = connection.execute(text("SELECT count(*) FROM ui_sessions")).scalar_one()
    engine.dispose()
    return int(count)


class TestSessionsEnd:
    def test_the_cookie_of_a_logged_out_session_no_longer_works(self, visitor: Visitor, make_user: UserMaker) -> None:
        visitor.login(*make_user("leaver"))
        kept = visitor.cookies[SESSION_COOKIE]  # what an attacker copied before the coach left
        assert visitor.post("/ui/logout", {"csrf_token": visitor.token("/ui/route")}).status_code == 303
        visitor.cookies[SESSION_COOKIE] = kept
        assert visitor.get("/ui/route").status_code == 303

    def test_reitti_users_disable_ends_the_sessions_at_once(
        self, visitor: Visitor, make_user: UserMaker, database_url: str
    ) -> None:
        visitor.login(*make_user("goner"))
        assert visitor.get("/ui/route").status_code == 200
        assert _reitti(database_url, "users", "disable", "goner").returncode == 0
        assert _session_rows(database_url) == 0
        assert visitor.get("/ui/route").status_code == 303

    def test_reitti_users_password_ends_the_sessions_and_the_new_one_logs_in(
        self, visitor: Visitor, new_visitor: VisitorMaker, make_user: UserMaker, database_url: str
    ) -> None:
        visitor.login(*make_user("changer"))
        new = "a new long password"
        changed = _reitti(database_url, "users", "password", "changer", "--password-stdin", stdin=new + "\n")
        assert changed.returncode == 0, changed.stderr
        assert _session_rows(database_url) == 0
        assert visitor.get("/ui/route").status_code == 303
        assert new_visitor().login("changer", new).status_code == 303
        assert new_visitor().login("changer", TEST_PASSWORD).status_code == 401

    def test_reitti_users_password_refuses_a_short_one_naming_the_rule(
        self, make_user: UserMaker, database_url: str
    ) -> None:
        make_user("shorty")
        refused = _reitti(database_url, "users", "password", "shorty", "--password-stdin", stdin="short\n")
        assert refused.returncode == 2
        assert "at least 12 characters" in refused.stderr

    def test_a_session_idle_longer_than_the_setting_has_ended(
        self, visitor: Visitor, make_user: UserMaker, database_url: str
    ) -> None:
        visitor.login(*make_user("idler"))
        age_sessions(database_url, "last_seen_at", hours=-29 / 60)
        assert visitor.get("/ui/route").status_code == 200  # 29 minutes: still there, and seen again now
        age_sessions(database_url, "last_seen_at", hours=-31 / 60)
        assert visitor.get("/ui/route").status_code == 303
        assert _session_rows(database_url) == 0

    def test_a_session_in_use_is_marked_seen(self, visitor: Visitor, make_user: UserMaker, database_url: str) -> None:
        visitor.login(*make_user("busy"))
        age_sessions(database_url, "last_seen_at", hours=-0.25)
        assert visitor.get("/ui/route").status_code == 200
        engine = make_engine(database_url)
        read, _ = make_sessions(engine)
        with read() as session:
            seen = session.scalars(select(UiSession.last_seen_at)).one()
        engine.dispose()
        assert datetime.now(UTC) - seen < timedelta(minutes=5)

    def test_the_cookie_carries_no_user_and_a_new_id_at_each_login(
        self, new_visitor: VisitorMaker, make_user: UserMaker, database_url: str
    ) -> None:
        name, password = make_user("twice")
        first, second = new_visitor(), new_visitor()
        first.login(name, password)
        second.login(name, password)
        cookies = {first.cookies[SESSION_COOKIE], second.cookies[SESSION_COOKIE]}
        assert len(cookies) == 2
        assert all("." not in cookie and len(cookie) >= 43 for cookie in cookies)
        engine = make_engine(database_url)
        with engine.connect() as connection:
            stored = set(connection.execute(text("SELECT id_sha256 FROM ui_sessions")).scalars())
        engine.dispose()
        assert stored == {hashlib.sha256(cookie.encode()).hexdigest() for cookie in cookies}

    def test_a_form_token_of_the_ended_session_is_refused(self, visitor: Visitor, make_user: UserMaker) -> None:
        visitor.login(*make_user("tokens"))
        token = visitor.token("/ui/route")
        visitor.post("/ui/logout", {"csrf_token": token})
        visitor.login("tokens", TEST_PASSWORD)
        assert visitor.post("/ui/logout", {"csrf_token": token}).status_code == 403


class TestSessionRows:
    """The rules of ui_sessions with the clock injected, on each database."""

    RULES = SessionRules(idle_seconds=30 * 60)

    def test_idle_absolute_and_cleanup(self, make_user: UserMaker, database_url: str) -> None:
        make_user("rows")
        engine = make_engine(database_url)
        read, write = make_sessions(engine)
        start = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
        with write() as session:
            user = session.scalars(select(User)).one()
            sid = open_session(session, user, self.RULES, now=start)
            stale = open_session(session, user, self.RULES, now=start)
        minute = timedelta(minutes=1)
        moment = start
        while moment + 29 * minute < start + timedelta(hours=8):  # used every 29 minutes all day
            moment += 29 * minute
            with read() as session:
                found = find_session(session, sid, self.RULES, now=moment)
            assert found.user is not None, moment
            with write() as session:
                settle(session, sid, found, now=moment)
        with read() as session:
            assert find_session(session, sid, self.RULES, now=start + timedelta(hours=8)).ended
            assert find_session(session, stale, self.RULES, now=start + 30 * minute).ended
            assert find_session(session, stale, self.RULES, now=start + 29 * minute).user is not None
        with write() as session:
            remove_expired(session, self.RULES, now=start + 8 * 60 * minute)
        assert _session_rows(database_url) == 0
        engine.dispose()
