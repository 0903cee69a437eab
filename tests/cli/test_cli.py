"""The `reitti` command, run as an operator runs it."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import delete, update

from app.config import REPOSITORY
from app.db import make_engine, make_sessions
from app.models import DecisionCount, DecisionMonthCount
from app.rules.engine import RuleEngine
from app.rules.model import Rules
from tests.conftest import TEST_CHAIN_INFO, Server, empty_the_log
from tests.decisions.test_stats import kept_counts, random_log

REITTI = [sys.executable, "-m", "app.cli"]


def reitti(*args: str, env: dict[str, str | None] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the command with this environment and `env` on top; a variable given as None is unset."""
    variables = {**os.environ, **(env or {})}
    return subprocess.run(
        [*REITTI, *args],
        capture_output=True,
        text=True,
        cwd=REPOSITORY,
        env={name: value for name, value in variables.items() if value is not None},
        timeout=120,
        check=False,
    )


class TestKeys:
    def test_create_prints_a_working_key_on_its_last_line_and_revoke_stops_it(
        self, database_url: str, server: Server
    ) -> None:
        env = {"REITTI_DATABASE_URL": database_url}
        created = reitti("keys", "create", "--role", "auditor", "--name", "cli-auditor", env=env)
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip().splitlines()[-1]
        assert key.startswith("reitti_")
        headers = {"Authorization": f"Bearer {key}"}
        assert httpx.get(f"{server.base_url}/v1/units", headers=headers).status_code == 200
        key_id = created.stdout.split()[1]
        listed = reitti("keys", "list", env=env)
        assert "cli-auditor" in listed.stdout
        assert key not in listed.stdout
        assert reitti("keys", "revoke", key_id, env=env).returncode == 0
        assert httpx.get(f"{server.base_url}/v1/units", headers=headers).status_code == 401

    def test_coach_key_needs_a_real_municipality(self, database_url: str) -> None:
        env = {"REITTI_DATABASE_URL": database_url}
        missing = reitti("keys", "create", "--role", "coach", "--name", "c", env=env)
        assert missing.returncode == 2
        assert "--municipality" in missing.stderr
        bogus = reitti("keys", "create", "--role", "coach", "--name", "c", "--municipality", "999", env=env)
        assert bogus.returncode == 2
        assert "999" in bogus.stderr

    def test_unit_staff_key_names_a_real_unit_and_a_coach_is_staff_of_its_local_unit(self, database_url: str) -> None:
        env = {"REITTI_DATABASE_URL": database_url}
        created = reitti("keys", "create", "--role", "unit", "--unit", "central-oeo", "--name", "oeo", env=env)
        assert created.returncode == 0, created.stderr
        assert "unit central-oeo" in created.stdout
        bogus = reitti("keys", "create", "--role", "unit", "--unit", "central-nothing", "--name", "x", env=env)
        assert bogus.returncode == 2
        assert "central-nothing" in bogus.stderr
        missing = reitti("keys", "create", "--role", "unit", "--name", "x", env=env)
        assert missing.returncode == 2
        assert "--unit" in missing.stderr
        coach = reitti("keys", "create", "--role", "coach", "--municipality", "244", "--name", "k", env=env)
        assert coach.returncode == 0
        assert "unit local-244" in coach.stdout


class TestAuditRebuildCounts:
    def test_counts_the_log_again_after_the_counts_were_edited(
        self, database_url: str, rules: Rules, rule_engine: RuleEngine
    ) -> None:
        engine = make_engine(database_url)
        try:
            random_log(make_sessions(engine, info=TEST_CHAIN_INFO)[1], rules, rule_engine, random.Random(8), count=60)
            kept = kept_counts(engine)
            with engine.begin() as connection:  # derived data: no trigger refuses this
                for table in (DecisionCount, DecisionMonthCount):
                    connection.execute(update(table).values(decisions=table.decisions + 5))
                    connection.execute(delete(table).where(table.client == "client-a"))
            assert kept_counts(engine) != kept
            rebuilt = reitti("audit", "rebuild-counts", env={"REITTI_DATABASE_URL": database_url})
            assert rebuilt.returncode == 0, rebuilt.stderr
            assert f"60 decisions in {len(kept['decision_counts'])} groups" in rebuilt.stdout
            assert kept_counts(engine) == kept
        finally:
            engine.dispose()
            empty_the_log(database_url)


class TestRulesCheck:
    def test_prints_version_and_sha256(self) -> None:
        checked = reitti("rules", "check")
        assert checked.returncode == 0, checked.stderr
        assert "2025-01-01" in checked.stdout
        assert "sha256" in checked.stdout

    def test_broken_rules_exit_1_naming_the_file(self, tmp_path: Path) -> None:
        broken = tmp_path / "rules"
        shutil.copytree(REPOSITORY / "rules", broken)
        units = broken / "units.yaml"
        units.write_text(units.read_text(encoding="utf-8").replace("kind: central\n", "kind: centre\n", 1))
        checked = reitti("rules", "check", env={"REITTI_RULES_DIR": str(broken)})
        assert checked.returncode == 1
        assert "units.yaml" in checked.stderr
        assert "centre" in checked.stderr


def test_db_upgrade_builds_a_new_sqlite_database_and_keeps_a_pseudonym_key(tmp_path: Path) -> None:
    database = tmp_path / "fresh" / "reitti.db"
    env = {"REITTI_DATABASE_URL": f"sqlite:///{database}"}
    env.pop("REITTI_PSEUDONYM_KEY", None)
    upgraded = reitti("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert database.exists()
    from app.config import Settings

    settings = Settings(database_url=env["REITTI_DATABASE_URL"])
    first = settings.resolve_pseudonym_key()
    assert (tmp_path / "fresh" / "reitti.db.pseudonym-key").stat().st_mode & 0o077 == 0
    assert settings.resolve_pseudonym_key() == first
