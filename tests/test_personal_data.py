"""Personal data: identity codes never reach the database, the logs or an error body."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.config import Settings
from app.db import make_engine
from tests.conftest import TEST_PSEUDONYM_KEY, KeyMaker, Server, empty_the_log

VALID = ["131052-308T", "010594Y9032", "020502E902X"]
INVALID = ["131052-308X", "290223-123A", "010594y9032"]  # wrong check, no such date, lower case
BUSINESS = "0112038-9"


def event(event_id: str, customer_id: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": event_id,
        "event_type": "oeo.start",
        "occurred_at": "2025-03-03T09:15:00+02:00",
        "customer": {"type": "jobseeker", "id": customer_id, "home_municipality": "244"},
        "attributes": {},
    }
    body.update(changes)
    return body


def stored_text(database_url: str) -> str:
    """Everything the database holds, as text: file bytes for SQLite, every row for PostgreSQL."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        path = Path(str(url.database))
        # Read the files in another process: closing any descriptor of a SQLite file drops
        # every POSIX lock this process holds on it, and the test servers run in this process
        # beside worker processes of later tests; that is how databases get corrupted.
        return "".join(
            subprocess.run(["cat", str(candidate)], capture_output=True, check=True).stdout.decode("latin-1")
            for candidate in (path, path.with_name(path.name + "-wal"))
            if candidate.exists()
        )
    engine = make_engine(database_url)
    with engine.connect() as connection:
        tables = connection.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars()
        dumped = [
            str(connection.execute(text(f'SELECT json_agg(t)::text FROM "{table}" t')).scalar())  # noqa: S608
            for table in list(tables)
        ]
    engine.dispose()
    return "\n".join(dumped)


def test_identity_codes_are_nowhere_after_a_run(
    database_url: str, make_key: KeyMaker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = Settings(database_url=database_url, pseudonym_key=TEST_PSEUDONYM_KEY)
    key = make_key(name="pii")
    bodies: list[str] = []
    with Server(settings, log_level="debug") as server, httpx.Client(base_url=server.base_url) as client:
        for number, code in enumerate(VALID + INVALID):
            bodies.append(client.post("/v1/events", json=event(f"p{number}", code), headers=key).text)
        employer = event("p-emp", BUSINESS, event_type="employer.recruitment")
        employer["customer"]["type"] = "employer"
        bodies.append(client.post("/v1/events", json=employer, headers=key).text)
        # the same event id again with another body: a 409 must not echo it either
        bodies.append(client.post("/v1/events", json=event("p0", VALID[1]), headers=key).text)
        # a schema error on the id field (a list) must not echo it
        bodies.append(client.post("/v1/events", json=event("p-bad", [VALID[2]]), headers=key).text)  # type: ignore[arg-type]
        listed = client.get("/v1/decisions", headers=make_key(role="auditor", name="auditor-pii")).text
    everything = "\n".join([*bodies, listed, caplog.text, stored_text(database_url)])
    assert "p0" in stored_text(database_url)  # the scan sees what was stored
    for code in [*VALID, *INVALID, BUSINESS]:
        assert code not in everything
        assert code.upper() not in everything
    empty_the_log(database_url)
