"""The database helpers, on each database."""

from __future__ import annotations

import fcntl
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url

from app.db import make_engine, make_sessions, refresh_sqlite_statistics
from app.decisions.store import decision_values, request_fingerprint
from app.models import Decision
from app.rules.engine import RuleEngine
from app.rules.events import read_event
from app.rules.model import Rules
from app.rules.routing import decide
from app.schemas import EventIn
from tests.conftest import empty_database, migrate
from tests.web.api.test_events import oeo_start


def test_sqlite_statistics_are_made_once_the_log_is_large_and_again_when_it_has_doubled(
    database_url: str, tmp_path: Path, rules: Rules, rule_engine: RuleEngine
) -> None:
    kind = make_url(database_url).get_backend_name()
    with empty_database(kind, tmp_path) as url:
        migrate(url)
        body = EventIn.model_validate(oeo_start())
        event = read_event(body, rules, pseudonym_key=b"k")
        decision = decide(event, engine=rule_engine, registry=rules.registry)
        values = decision_values(client="c", event=event, fingerprint=request_fingerprint(body, "p"), decision=decision)
        engine = make_engine(url)

        def add(count: int, start: int) -> None:
            rows = [{**values, "decision_id": f"d-{n}", "event_id": f"e-{n}"} for n in range(start, start + count)]
            with engine.begin() as connection:
                connection.execute(insert(Decision.__table__), rows)

        try:
            add(999, 0)
            assert refresh_sqlite_statistics(engine, least=1000) is False  # too small to matter
            add(1, 999)
            ran = refresh_sqlite_statistics(engine, least=1000)
            if kind == "postgresql":
                assert ran is False  # PostgreSQL keeps its own
                return
            assert ran is True
            with engine.connect() as connection:
                stat = connection.execute(text("SELECT stat FROM sqlite_stat1 WHERE tbl = 'decisions'")).scalar()
            assert str(stat).startswith("1000 ")
            add(999, 1000)
            assert refresh_sqlite_statistics(engine, least=1000) is False  # not yet twice as large
            add(1, 1999)
            assert refresh_sqlite_statistics(engine, least=1000) is True
        finally:
            engine.dispose()


_HOLD_THE_TURN = """
import sys, time
from app.db import make_engine, make_sessions
_, write = make_sessions(make_engine(sys.argv[1]))
with write():
    print("holding", flush=True)
    sys.stdin.readline()  # until the test says so
"""


def test_a_sqlite_writer_waits_for_a_writer_of_another_process_on_the_lock_beside_the_file(tmp_path: Path) -> None:
    """Workers take their turns on an flock(2) beside the database, not in SQLite's sleeping busy handler."""
    url = f"sqlite:///{tmp_path / 'turns.db'}"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_THE_TURN, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "holding\n"
        with open(tmp_path / "turns.db-writer.lock", "rb") as lock:
            with pytest.raises(BlockingIOError):
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            holder.communicate("done\n", timeout=30)
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released with the transaction
    finally:
        holder.kill()
    _, write = make_sessions(make_engine(url))
    with write() as session:  # and this process's writer takes the turn after it
        assert session.execute(text("SELECT 1")).scalar() == 1


def test_only_the_storing_engine_keeps_sqlites_temporary_files_in_memory(tmp_path: Path) -> None:
    # A batch's statement journals go to memory; a report's sort on any other engine may still spill to disk.
    url = f"sqlite:///{tmp_path / 'temp.db'}"
    storing, other = make_engine(url, storing=True), make_engine(url)
    try:
        with storing.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA temp_store").scalar() == 2  # MEMORY
        with other.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA temp_store").scalar() == 0  # the default: files
    finally:
        storing.dispose()
        other.dispose()
