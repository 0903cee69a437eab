"""Faults: the database goes away under load and comes back; the service keeps its promises.

PostgreSQL is stopped for real: a private cluster made for this test (initdb on a free
port), so that the machine's shared server is never touched. SQLite is made unwritable
with `chattr +i` on its files (root ignores file modes).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.access.keys import create_key
from app.config import Settings
from app.db import make_engine, make_sessions
from app.models import Role
from tests.conftest import TEST_CHAIN_INFO, TEST_PSEUDONYM_KEY, Server, chain_verifies, free_port, migrate

PG_BIN = Path("/usr/lib/postgresql") / (sorted(p.name for p in Path("/usr/lib/postgresql").iterdir())[-1]) / "bin"


def as_postgres(*command: str) -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", *command], check=True, capture_output=True, timeout=60)


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on a free loopback port."""

    def __init__(self, root: Path) -> None:
        self.data = root / "data"
        self.port = free_port()
        root.mkdir(exist_ok=True)
        shutil.chown(root, "postgres")
        as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data}"
        log = str(self.data.parent / "server.log")  # not our pipes: the server outlives pg_ctl
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", log, "-o", options, "-w", "start")

    def stop(self) -> None:
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    # Not pytest's tmp_path: its folders are root's alone, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="reitti-pg-"))
    root.chmod(0o755)
    cluster = PrivatePostgres(root / "cluster")
    try:
        cluster.start()
        yield cluster
    finally:
        try:
            cluster.stop()
        except subprocess.CalledProcessError:
            pass  # already stopped by the test
        shutil.rmtree(root, ignore_errors=True)


def integration_key(url: str) -> dict[str, str]:
    database = make_engine(url)
    _, write = make_sessions(database, info=TEST_CHAIN_INFO)
    with write() as session:
        _, plain = create_key(session, role=Role.integration, name="faults", municipality=None)
    database.dispose()
    return {"Authorization": f"Bearer {plain}"}


def body(event_id: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_type": "eu_job_search",
        "occurred_at": "2025-03-03T09:15:00+02:00",
        "customer": {"type": "jobseeker", "id": f"fault-{event_id}", "home_municipality": "244"},
    }


class Clients:
    """Clients that post numbered events and retry each until it is acknowledged."""

    def __init__(self, base_url: str, key: dict[str, str], clients: int = 3) -> None:
        self.base_url, self.key = base_url, key
        self.acknowledged: dict[str, str] = {}
        self.statuses: list[int] = []
        self.slow: list[float] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(n,)) for n in range(clients)]

    def run(self, number: int) -> None:
        sent = 0
        with httpx.Client(base_url=self.base_url, headers=self.key, timeout=10) as client:
            while not self.stop.is_set() and sent < 2000:
                event_id = f"c{number}-{sent}"
                while not self.stop.is_set():
                    started = time.monotonic()
                    try:
                        response = client.post("/v1/events", json=body(event_id))
                    except httpx.TransportError:
                        time.sleep(0.05)
                        continue
                    elapsed = time.monotonic() - started
                    with self.lock:
                        self.statuses.append(response.status_code)
                        if elapsed > 2:
                            self.slow.append(elapsed)
                    if response.status_code in (200, 201):
                        with self.lock:
                            self.acknowledged[event_id] = response.json()["decision_id"]
                        break
                    assert response.status_code == 503, response.text
                    assert response.headers["retry-after"].isdigit()
                    time.sleep(0.05)
                sent += 1

    def __enter__(self) -> Clients:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)


def logged(url: str) -> dict[str, str]:
    database = make_engine(url)
    with database.connect() as connection:
        rows = connection.execute(text("SELECT event_id, decision_id FROM decisions")).all()
    database.dispose()
    return {row.event_id: row.decision_id for row in rows}


def wait_for(predicate: Any, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.05)


def check_outage(server: Server, clients: Clients, break_database: Any, mend_database: Any) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as probe:
        wait_for(lambda: len(clients.acknowledged) >= 20)
        break_database()
        broken_at = time.monotonic()
        wait_for(lambda: probe.get("/readyz").status_code == 503, seconds=2)
        assert probe.get("/healthz").status_code == 200
        wait_for(lambda: 503 in clients.statuses, seconds=2)
        assert time.monotonic() - broken_at < 2 + 0.5
        acknowledged_during = len(clients.acknowledged)
        time.sleep(1)
        mend_database()
        wait_for(lambda: probe.get("/readyz").status_code == 200)
        wait_for(lambda: len(clients.acknowledged) >= acknowledged_during + 20)


def test_postgres_stopped_mid_load_gives_503_and_recovers_without_restart(
    private_postgres: PrivatePostgres,
) -> None:
    migrate(private_postgres.url)
    key = integration_key(private_postgres.url)
    settings = Settings(database_url=private_postgres.url, pseudonym_key=TEST_PSEUDONYM_KEY)
    with Server(settings) as server, Clients(server.base_url, key) as clients:
        check_outage(server, clients, private_postgres.stop, private_postgres.start)
    assert clients.slow == [], "every answer came within 2 s"
    stored = logged(private_postgres.url)
    assert clients.acknowledged.items() <= stored.items(), "an acknowledged decision is missing or differs"
    assert len(stored) == len(set(stored.values()))
    assert set(clients.statuses) <= {200, 201, 503}
    intact, links, summary = chain_verifies(private_postgres.url)
    assert intact, summary
    assert links == len(stored)


def test_sqlite_made_unwritable_gives_503_and_recovers_without_restart(tmp_path: Path) -> None:
    database = tmp_path / "reitti.db"
    url = f"sqlite:///{database}"
    migrate(url)
    key = integration_key(url)
    # Not the -shm file: SQLite maps it into memory, and a write to an immutable mapping is
    # a SIGBUS that kills the process; the database and its WAL are what "unwritable" means.
    files = [database, database.with_name("reitti.db-wal")]

    def immutable(flag: str) -> None:
        for path in files:
            if path.exists():
                subprocess.run(["chattr", flag, str(path)], check=True)

    settings = Settings(database_url=url, pseudonym_key=TEST_PSEUDONYM_KEY)
    try:
        with Server(settings) as server, Clients(server.base_url, key) as clients:
            check_outage(server, clients, lambda: immutable("+i"), lambda: immutable("-i"))
    finally:
        immutable("-i")
    assert clients.slow == []
    stored = logged(url)
    assert clients.acknowledged.items() <= stored.items()
    assert set(clients.statuses) <= {200, 201, 503}
    intact, links, summary = chain_verifies(url)
    assert intact, summary
    assert links == len(stored)
