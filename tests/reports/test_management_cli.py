"""The management role made from the command line, as an operator makes it: keys and UI accounts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import text

from app.config import REPOSITORY
from app.db import make_engine
from tests.cli.test_cli import reitti
from tests.conftest import Server, empty_the_log, migrate


def test_a_management_key_reads_the_cost_sharing_report_and_no_decision(database_url: str, server: Server) -> None:
    env = {"REITTI_DATABASE_URL": database_url}
    try:
        created = reitti("keys", "create", "--role", "management", "--name", "cli-johto", env=env)
        assert created.returncode == 0, created.stderr
        headers = {"Authorization": f"Bearer {created.stdout.strip().splitlines()[-1]}"}
        period = {"from": "2025-01-01", "to": "2025-12-31"}
        report = httpx.get(f"{server.base_url}/v1/reports/cost-sharing", params=period, headers=headers)
        assert report.status_code == 200
        assert httpx.get(f"{server.base_url}/v1/decisions", headers=headers).status_code == 403
    finally:
        empty_the_log(database_url)  # the key goes with the log's rows


def test_users_create_makes_a_management_account_without_a_municipality(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'reitti.db'}"
    migrate(url)
    env = {"REITTI_DATABASE_URL": url, "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "app.cli", "users", "create", "--role", "management"]
    made = subprocess.run(
        [*command, "--name", "johto", "--password-stdin"], input="a long enough password\n",
        capture_output=True, text=True, env=env, cwd=REPOSITORY, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    engine = make_engine(url)
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT username, role, municipality FROM users")).all()
    engine.dispose()
    assert [tuple(row) for row in stored] == [("johto", "management", None)]
