"""The database helpers, on each database."""

from __future__ import annotations

import fcntl
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Insert, insert, inspect, text
from sqlalchemy.engine import make_url

from app.audit import chain
from app.db import make_engine, make_sessions, refresh_sqlite_statistics
from app.decisions import counts
from app.decisions import store as store_module
from app.decisions.intake import prepare
from app.decisions.store import Row, decision_values, request_fingerprint, store_rows
from app.models import Decision, WebhookSubscription
from app.register import routing
from app.rules.engine import RuleEngine
from app.rules.events import read_event
from app.rules.model import Rules
from app.rules.routing import decide
from app.schemas import EventIn
from app.webhooks import outbox
from tests.conftest import TEST_CHAIN_INFO, empty_database, migrate
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


# The tables a writer's batch inserts into, each through insert_rows.
BATCH_TABLES = (
    "decisions",
    "audit_chain",
    "decision_counts",
    "decision_month_counts",
    "customerships",
    "customer_holders",
    "worklist_items",
    "webhook_deliveries",
)
INSERTING_MODULES = (chain, counts, store_module, routing, outbox)


def _executemany(connection: Connection, statement: Insert, rows: Sequence[Mapping[str, Any]]) -> None:
    """SQLAlchemy's own executemany of the rows: what insert_rows stands in for."""
    connection.execute(statement, list(rows))


class _Frozen(datetime):
    """The clock of the chain's links and the outbox's messages, stopped: both databases get the same ones."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> _Frozen:
        return cls(2025, 6, 2, 9, 30, 15, 123456, tzinfo=UTC)


def _store_batches(url: str, batches: list[list[Row]]) -> dict[str, list[tuple[Any, ...]]]:
    """Migrate `url`, store the batches as the writer does, and read every column of the batch's tables as stored.

    SQLite's quote() says each value's storage class and exact text; PostgreSQL's row as text
    is the output of each column's type, which for jsonb and timestamptz is their stored value.
    """
    migrate(url)
    engine = make_engine(url)
    _, write = make_sessions(engine, info=TEST_CHAIN_INFO)
    try:
        with write() as session:
            for full_record in (True, False):  # both kinds of payload
                session.add(
                    WebhookSubscription(
                        url="https://example.test/hook",
                        kinds=[],
                        units=[],
                        event_types=[],
                        full_record=full_record,
                        secret="s" * 32,
                        created_by="test",
                        created_at=_Frozen.now(),
                    )
                )
        for batch in batches:
            with write() as session:
                store_rows(session, batch)
        stored = {}
        with engine.connect() as connection:
            for table in BATCH_TABLES:
                if connection.dialect.name == "sqlite":
                    names = [column["name"] for column in inspect(connection).get_columns(table)]
                    values = ", ".join(f'quote("{name}")' for name in names)
                    query = f"SELECT {values} FROM {table}"  # noqa: S608 - the names are ours
                else:
                    query = f"SELECT t::text FROM {table} AS t"  # noqa: S608
                stored[table] = sorted(tuple(row) for row in connection.execute(text(query)))
        return stored
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_insert_rows_stores_the_same_bytes_as_sqlalchemys_executemany(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rules: Rules, rule_engine: RuleEngine
) -> None:
    """Every column of every table a batch writes, stored by the writer and by plain SQLAlchemy, is equal."""

    def event(event_id: str, event_type: str, occurred_at: str, customer: str, municipality: str = "244") -> Row:
        body = EventIn.model_validate(
            {
                "event_id": event_id,
                "event_type": event_type,
                "occurred_at": occurred_at,
                "customer": {"type": "jobseeker", "id": customer, "home_municipality": municipality},
            }
        )
        return prepare(body, client="batch", rules=rules, engine=rule_engine, pseudonym_key=b"k").row()

    batches = [
        [event("end", "oeo.end", "2025-06-02T09:00:00+03:00", "opaque-1")],  # one row: RETURNING on PostgreSQL
        [  # a handover, a late event, an anomaly, two customers, counts of two days and two months
            event("start", "oeo.start", "2025-03-03T09:00:00+02:00", "opaque-1"),
            event("follow", "oeo.follow_up", "2025-04-01T09:00:00+03:00", "opaque-1"),
            event("other", "oeo.start", "2025-04-01T23:30:00+03:00", "opaque-2", "091"),
            event("update", "oeo.plan_update", "2025-04-02T00:30:00+03:00", "opaque-3"),
        ],
        [event("start", "oeo.start", "2025-03-03T09:00:00+02:00", "opaque-1")],  # a repeat: nothing stored
    ]
    new_link = chain.new_link
    monkeypatch.setattr(chain, "new_link", lambda *link: new_link(*link, chained_at=_Frozen.now()))
    monkeypatch.setattr(outbox, "datetime", _Frozen)
    stored = {}
    for path in ("insert_rows", "sqlalchemy"):
        messages = count()
        (tmp_path / path).mkdir()
        with empty_database(kind, tmp_path / path) as url, monkeypatch.context() as patch:
            patch.setattr(outbox, "new_message_id", lambda: f"msg_{next(messages)}")  # noqa: B023 - used here
            if path == "sqlalchemy":
                for module in INSERTING_MODULES:
                    patch.setattr(module, "insert_rows", _executemany)
            stored[path] = _store_batches(url, batches)
    assert all(stored["sqlalchemy"][table] for table in BATCH_TABLES)  # each table has rows to compare
    for table in BATCH_TABLES:
        assert stored["insert_rows"][table] == stored["sqlalchemy"][table], table
