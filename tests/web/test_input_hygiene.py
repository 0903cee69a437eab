"""Values that are dangerous where they end up: CSV formulas, odd key names, times that are not times, logged URLs."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.access.keys import create_key
from app.config import REPOSITORY, Settings
from app.db import make_engine, make_sessions
from app.models import Role
from tests.cli.test_cli import reitti
from tests.conftest import (
    TEST_CHECKPOINT_KEY,
    TEST_PSEUDONYM_KEY,
    TEST_SESSION_SECRET,
    KeyMaker,
    Server,
    count_rows,
    empty_database,
    free_port,
    migrate,
)
from tests.test_personal_data import event

CODE = "131052-308T"


def test_csv_cells_that_a_spreadsheet_would_run_start_with_a_quote(api: httpx.Client, make_key: KeyMaker) -> None:
    client = make_key()
    for event_id in ("-2-3", ":plain", "plain"):
        assert api.post("/v1/events", json=event(event_id, CODE), headers=client).status_code == 201
    exported = api.get("/v1/decisions", headers={**make_key(role="auditor", name="auditor"), "Accept": "text/csv"})
    ids = {row["event_id"] for row in csv.DictReader(io.StringIO(exported.text))}
    assert ids == {"'-2-3", ":plain", "plain"}


@pytest.mark.parametrize("name", ["=cmd", "+1", "-1", "@sum", "\tx", "a b", "nimi\x00", CODE, f"x{CODE.lower()}", ""])
def test_a_key_name_that_is_not_plain_is_refused(database_url: str, name: str) -> None:
    engine = make_engine(database_url)
    _, write = make_sessions(engine)
    try:
        with pytest.raises(ValueError, match="name") as raised, write() as session:
            create_key(session, role=Role.integration, name=name, municipality=None)
    finally:
        engine.dispose()
    assert CODE not in str(raised.value)
    assert count_rows(database_url, "api_keys") == 0


def test_the_command_refuses_a_formula_as_a_key_name(database_url: str) -> None:
    created = reitti("keys", "create", "--role", "integration", "--name", "=HYPERLINK(1)", env={
        "REITTI_DATABASE_URL": database_url
    })  # fmt: skip
    assert created.returncode == 2
    assert "name" in created.stderr
    assert count_rows(database_url, "api_keys") == 0


def _in(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


@pytest.mark.parametrize(
    "occurred_at",
    [1741000000, "1741000000", 1741000000.5, "2025-03-03T09:15:00", "2025-03-03", "2100-01-01T00:00:00Z", "future"],
)
def test_occurred_at_is_an_rfc3339_time_with_offset_not_far_ahead(
    api: httpx.Client, make_key: KeyMaker, database_url: str, occurred_at: Any
) -> None:
    if occurred_at == "future":
        occurred_at = _in(1)
    response = api.post("/v1/events", json=event("when", CODE, occurred_at=occurred_at), headers=make_key())
    assert response.status_code == 422, response.text
    assert ["body", "occurred_at"] in [e["loc"] for e in response.json()["errors"]]
    assert str(occurred_at) not in response.text
    assert count_rows(database_url) == 0


def test_the_tolerance_for_times_ahead_is_a_setting(database_url: str, make_key: KeyMaker, api: httpx.Client) -> None:
    settings = Settings(database_url=database_url, pseudonym_key=TEST_PSEUDONYM_KEY, future_tolerance_seconds=2 * 86400)
    key = make_key()
    with Server(settings) as lenient, httpx.Client(base_url=lenient.base_url) as client:
        assert (
            client.post("/v1/events", json=event("in-a-day", CODE, occurred_at=_in(1)), headers=key).status_code == 201
        )
        assert (
            client.post("/v1/events", json=event("in-3-days", CODE, occurred_at=_in(3)), headers=key).status_code == 422
        )
    assert Settings.from_env().future_tolerance_seconds == 300


@pytest.fixture
def served(tmp_path: Path) -> Any:
    """`reitti serve` as an operator runs it (on SQLite: the log is the same on both), its output kept in a file."""
    with empty_database("sqlite", tmp_path) as url:
        migrate(url)
        port = free_port()
        env = {
            **os.environ,
            "REITTI_DATABASE_URL": url,
            "REITTI_PSEUDONYM_KEY": TEST_PSEUDONYM_KEY,
            "REITTI_SESSION_SECRET": TEST_SESSION_SECRET,
            "REITTI_CHECKPOINT_KEY": TEST_CHECKPOINT_KEY,
        }
        output = tmp_path / "serve.log"
        with output.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
                cwd=REPOSITORY,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
            base_url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(f"{base_url}/healthz")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the server did not start"
                    time.sleep(0.1)
            yield base_url, output
            process.send_signal(signal.SIGINT)
            process.wait(timeout=20)


def test_the_access_log_of_reitti_serve_keeps_no_query_and_no_odd_path_segment(served: Any) -> None:
    base_url, output = served
    httpx.get(f"{base_url}/v1/decisions/{CODE}")
    httpx.get(f"{base_url}/v1/decisions", params={"event_type": CODE})
    httpx.get(f"{base_url}/healthz")
    logged = output.read_text()
    assert "GET /healthz" in logged
    assert "GET /v1/decisions/(redacted)" in logged
    assert CODE not in logged
