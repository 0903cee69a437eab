"""What must hold in every worker at once: logins throttled, sessions ended, keys revoked.

Each request goes on a new connection, so that the kernel spreads them over both workers:
state kept in one worker's memory would let some of them through.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import text

from app.config import REPOSITORY
from app.db import make_engine
from tests.conftest import KeyMaker, UserMaker, empty_the_log
from tests.test_workers import Workers
from tests.web.api.test_events import oeo_start
from tests.web.ui.test_pages import Visitor

TRIES = 12


@pytest.fixture
def slow_workers(database_url: str) -> Iterator[Workers]:
    # A failed login's first delay is two minutes here, so that no answer depends on the clock.
    running = Workers(database_url, REITTI_LOGIN_DELAY_SECONDS="60")
    yield running
    running.close()
    empty_the_log(database_url)


def _visitor(workers: Workers, address: str | None = None) -> Visitor:
    visitor = Visitor(workers, address=address)
    visitor.client.close()
    transport = httpx.HTTPTransport(local_address=address, limits=httpx.Limits(max_keepalive_connections=0))
    visitor.client = httpx.Client(base_url=workers.base_url, timeout=30, follow_redirects=False, transport=transport)
    return visitor


def test_a_failed_pair_waits_in_every_worker_and_the_coach_still_gets_in(
    slow_workers: Workers, make_user: UserMaker
) -> None:
    name, password = make_user("target")
    attacker = _visitor(slow_workers, address="127.0.0.2")
    assert attacker.login(name, "guess").status_code == 401
    answers = [attacker.login(name, "guess").status_code for _ in range(TRIES)]
    assert answers == [429] * TRIES
    refused = attacker.login(name, password)
    assert refused.status_code == 429
    assert 100 < int(refused.headers["retry-after"]) <= 120
    assert _visitor(slow_workers).login(name, password).status_code == 303


def test_a_logged_out_session_is_over_in_every_worker(slow_workers: Workers, make_user: UserMaker) -> None:
    visitor = _visitor(slow_workers)
    visitor.login(*make_user("everywhere"))
    assert [visitor.get("/ui/route").status_code for _ in range(4)] == [200] * 4
    kept = dict(visitor.cookies)
    assert visitor.post("/ui/logout", {"csrf_token": visitor.token("/ui/route")}).status_code == 303
    visitor.cookies = kept
    assert [visitor.get("/ui/route").status_code for _ in range(TRIES)] == [303] * TRIES


def test_a_revoked_key_gets_401_from_every_worker_whatever_it_sends(
    slow_workers: Workers, make_key: KeyMaker, database_url: str
) -> None:
    key = make_key(name="revoked")
    for number in range(TRIES):  # each worker remembers the key
        with httpx.Client(base_url=slow_workers.base_url, headers=key, timeout=30) as http:
            assert http.post("/v1/events", json=oeo_start(f"k{number}")).status_code == 201
    engine = make_engine(database_url)
    with engine.connect() as connection:
        key_id = str(connection.execute(text("SELECT id FROM api_keys WHERE name = 'revoked'")).scalar_one())
    engine.dispose()
    revoke = subprocess.run(
        [sys.executable, "-m", "app.cli", "keys", "revoke", key_id], capture_output=True, text=True, check=False,
        env={"REITTI_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}, cwd=REPOSITORY,
    )  # fmt: skip
    assert revoke.returncode == 0, revoke.stderr
    for body in ({}, oeo_start("after", event_type="no.such.event")) * (TRIES // 2):
        with httpx.Client(base_url=slow_workers.base_url, headers=key, timeout=30) as http:
            assert http.post("/v1/events", json=body).status_code == 401
