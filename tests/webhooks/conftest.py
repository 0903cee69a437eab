"""A real webhook receiver on loopback, and the service on a database of its own with a short retry schedule.

The webhook tests get their own database of each kind: the suite's shared server delivers
with the default settings (no loopback allowed, hours between retries), and would otherwise
claim these tests' messages.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.config import Settings
from app.db import make_engine
from tests.conftest import TEST_PSEUDONYM_KEY, Server, empty_database, empty_the_log, migrate

# Short enough for a test, the shape of the real one: at once, then waits that grow.
TEST_SCHEDULE = (0.0, 0.2, 0.4, 0.6)
WEBHOOK_SETTINGS = {
    "webhook_allow_hosts": frozenset({"127.0.0.1"}),
    "webhook_retry_schedule": TEST_SCHEDULE,
    "webhook_timeout_seconds": 1.0,
    "webhook_poll_seconds": 0.05,
}


@dataclass
class Received:
    """One request the receiver got."""

    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def message_id(self) -> str:
        return self.headers["webhook-id"]

    def json(self) -> Any:
        return json.loads(self.body)


# What the receiver answers the nth request (from 0): a status, headers, and seconds to wait first.
Answer = Callable[[int, "Received"], tuple[int, dict[str, str], float]]


def always_ok(_: int, __: Received) -> tuple[int, dict[str, str], float]:
    return 204, {}, 0.0


@dataclass
class Receiver:
    """An HTTP server on loopback that records every webhook and answers as the test says."""

    answer: Answer = always_ok
    port: int = 0  # a free one, or the port of a receiver that was down
    received: list[Received] = field(default_factory=list)
    # Messages being answered right now: a message in flight twice at once is a fault.
    in_flight: dict[str, int] = field(default_factory=dict)
    concurrent_repeats: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                got = Received({k.lower(): v for k, v in self.headers.items()}, body, 0)
                with receiver.lock:
                    number = len(receiver.received)
                    receiver.received.append(got)
                    receiver.in_flight[got.message_id] = receiver.in_flight.get(got.message_id, 0) + 1
                    if receiver.in_flight[got.message_id] > 1:
                        receiver.concurrent_repeats.append(got.message_id)
                try:
                    status, headers, wait = receiver.answer(number, got)
                    got.status = status
                    time.sleep(wait)
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender gave up (a timeout): that is the point of such a test
                finally:
                    with receiver.lock:
                        receiver.in_flight[got.message_id] -= 1

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def delivered(self) -> dict[str, Received]:
        """The messages answered 2xx, by webhook-id."""
        with self.lock:
            return {r.message_id: r for r in self.received if 200 <= r.status < 300}

    def wait_for(self, condition: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out; received {len(self.received)}"
            time.sleep(0.05)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def webhook_database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh, migrated database of each kind for this module's servers alone."""
    folder: Path = tmp_path_factory.mktemp(f"webhooks-{request.param}")
    with empty_database(request.param, folder) as url:
        migrate(url)
        yield url


def webhook_settings(database_url: str, **changes: Any) -> Settings:
    """The service's settings for these tests: loopback allowed, a short schedule, short timeouts."""
    return Settings(database_url=database_url, pseudonym_key=TEST_PSEUDONYM_KEY, **{**WEBHOOK_SETTINGS, **changes})


@pytest.fixture(scope="module")
def webhook_server(webhook_database: str) -> Iterator[Server]:
    with Server(webhook_settings(webhook_database)) as running:
        yield running


def empty_webhooks(database_url: str) -> None:
    """Remove every subscription, message and attempt."""
    engine = make_engine(database_url)
    with engine.begin() as connection:
        for table in ("webhook_attempts", "webhook_deliveries", "webhook_subscriptions"):
            connection.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - the names are ours
    engine.dispose()


@pytest.fixture
def hooks_api(webhook_server: Server, webhook_database: str) -> Iterator[httpx.Client]:
    """An HTTP client for the webhook tests' server; the test's rows are removed afterwards."""
    with httpx.Client(base_url=webhook_server.base_url, timeout=30) as client:
        yield client
    empty_webhooks(webhook_database)
    empty_the_log(webhook_database)


@pytest.fixture
def hook_keys(webhook_database: str) -> Iterator[dict[str, dict[str, str]]]:
    """Authorization headers of an admin, an integration, a coach and the OEO experts, in the tests' database."""
    from app.access.keys import create_key
    from app.db import make_sessions
    from app.models import Role
    from tests.conftest import TEST_CHAIN_INFO

    engine = make_engine(webhook_database)
    _, write = make_sessions(engine, info=TEST_CHAIN_INFO)
    headers = {}
    with write() as session:
        for role, name in ((Role.admin, "admin"), (Role.integration, "client-a"), (Role.coach, "coach-244")):
            _, plain = create_key(session, role=role, name=name, municipality="244" if role == Role.coach else None)
            headers[role.value] = {"Authorization": f"Bearer {plain}"}
        _, plain = create_key(session, role=Role.unit, name="oeo-experts", municipality=None, unit="central-oeo")
        headers[Role.unit.value] = {"Authorization": f"Bearer {plain}"}
    yield headers
    engine.dispose()
