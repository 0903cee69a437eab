"""Shared fixtures: the rules, the engine, real databases built by the migrations, and a
real server on loopback for each database.

The suite runs against SQLite and PostgreSQL alike: every fixture that touches a
database is parametrised over both. PostgreSQL is the machine's own server
(REITTI_TEST_POSTGRES_URL, default postgresql://postgres@127.0.0.1:5432/postgres); each
test session makes a fresh database there and drops it at the end.

The log tables are append-only: triggers refuse UPDATE and DELETE. After each test the
`api` fixture empties them on a connection where those triggers do not fire (see
`without_append_only_triggers`), so each test starts with an empty log and chain and
may assert on the whole of it; the triggers themselves are tested with them in place.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from alembic import command
from alembic.config import Config
from playwright.sync_api import Browser, Page, Playwright, sync_playwright
from sqlalchemy import Connection, create_engine, text

from app.access.keys import create_key
from app.audit.keys import ChainKeys, session_info
from app.config import REPOSITORY, Settings
from app.db import make_engine, make_sessions
from app.models import Role
from app.rules.engine import RuleEngine
from app.rules.loader import load_rules
from app.rules.model import Rules

POSTGRES_ADMIN_URL = os.environ.get("REITTI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
TEST_PSEUDONYM_KEY = "test-pseudonym-key"
TEST_CHECKPOINT_KEY = "test-checkpoint-key"
TEST_CHAIN_KEY = "test-chain-key"
# What every test's sessions carry: the chain keys the test servers sign links with.
TEST_CHAIN_INFO = session_info(ChainKeys.of(TEST_CHAIN_KEY.encode("utf-8")))


@pytest.fixture(scope="session")
def rules() -> Rules:
    """The shipped rules."""
    return load_rules(REPOSITORY / "rules")


@pytest.fixture(scope="session")
def rule_engine(rules: Rules) -> Iterator[RuleEngine]:
    """The engine with every shipped rule set compiled."""
    engine = RuleEngine()
    for ruleset in rules.rulesets:
        engine.load(ruleset)
    yield engine
    engine.close()


def migrate(url: str, revision: str = "head") -> None:
    """Build the schema the only way it is built: by the migrations."""
    config = Config(str(REPOSITORY / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logging"] = False
    config.attributes["chain_key"] = TEST_CHAIN_KEY
    command.upgrade(config, revision)


@contextmanager
def empty_database(kind: str, folder: Path) -> Iterator[str]:
    """The URL of a new, empty database of `kind` (a SQLite file in `folder`); PostgreSQL's is dropped after."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'reitti.db'}"
        return
    name = f"reitti_test_{os.getpid()}_{secrets.token_hex(4)}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield str(admin.url.set(database=name).render_as_string(hide_password=False))
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh, migrated database of each kind."""
    with empty_database(request.param, tmp_path_factory.mktemp(request.param)) as url:
        migrate(url)
        yield url


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


TEST_SESSION_SECRET = "test-session-secret"


class Server:
    """A real uvicorn server on loopback, running create_app() in a thread."""

    def __init__(self, settings: Settings, log_level: str = "warning") -> None:
        from dataclasses import replace

        from app.main import create_app

        # Every test server signs UI sessions with the test secret unless the test names one.
        settings = replace(
            settings,
            session_secret=settings.session_secret or TEST_SESSION_SECRET,
            checkpoint_key=settings.checkpoint_key or TEST_CHECKPOINT_KEY,
            chain_key=settings.chain_key or TEST_CHAIN_KEY,
        )
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=self.port, log_level=log_level, lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        # A start with rules whose decision table is not cached walks their input domain first:
        # seconds on a quiet machine, far more on a loaded one.
        deadline = time.monotonic() + 90
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


@pytest.fixture(scope="session")
def server(database_url: str) -> Iterator[Server]:
    """The service, served over real HTTP on loopback, on each database."""
    settings = Settings(database_url=database_url, pseudonym_key=TEST_PSEUDONYM_KEY, checkpoint_key=TEST_CHECKPOINT_KEY)
    with Server(settings) as running:
        yield running


@contextmanager
def without_append_only_triggers(database_url: str) -> Iterator[Connection]:
    """A transaction in which the log's append-only triggers do not fire: to clean up, or to play the intruder.

    PostgreSQL skips ordinary triggers for a session in replica mode (this needs the
    superuser the tests connect as). SQLite has no such switch: the triggers are dropped
    and made again from their own SQL before the transaction commits, so no other
    connection ever sees the tables without them.
    """
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SET LOCAL session_replication_role = replica"))
                yield connection
                return
            triggers = connection.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")).all()
            for name, _ in triggers:
                connection.execute(text(f'DROP TRIGGER "{name}"'))
            yield connection
            for _, sql in triggers:
                connection.execute(text(sql))
    finally:
        engine.dispose()


COUNT_TABLES = ("decision_counts", "decision_month_counts")


def empty_the_log(database_url: str) -> None:
    """Remove every decision, link, override, access-log entry, decision count and key: a test's cleanup."""
    with without_append_only_triggers(database_url) as connection:
        for table in (
            "access_log",
            "overrides",
            "acknowledgements",
            "worklist_items",
            "customerships",
            "customer_holders",
            "audit_chain",
            "decisions",
            "api_keys",
            *COUNT_TABLES,
        ):
            connection.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - the names are ours


@pytest.fixture
def api(server: Server, database_url: str) -> Iterator[httpx.Client]:
    """An HTTP client for the server; the test's rows are removed afterwards."""
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        yield client
    empty_the_log(database_url)


KeyMaker = Callable[..., dict[str, str]]


@pytest.fixture
def make_key(database_url: str) -> Iterator[KeyMaker]:
    """Make an API key in the test database; returns the Authorization header for it."""
    engine = make_engine(database_url)
    _, write = make_sessions(engine, info=TEST_CHAIN_INFO)

    def make(
        role: str = "integration", name: str = "client-a", municipality: str | None = None, unit: str | None = None
    ) -> dict[str, str]:
        with write() as session:
            _, plain = create_key(session, role=Role(role), name=name, municipality=municipality, unit=unit)
        return {"Authorization": f"Bearer {plain}"}

    yield make
    engine.dispose()


def count_rows(database_url: str, table: str = "decisions") -> int:
    """How many rows a table has now."""
    engine = make_engine(database_url)
    with engine.connect() as connection:
        count = connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608
    engine.dispose()
    return int(count)


def cases_dir() -> Path:
    """Where the golden cases are: beside the rules they test."""
    return REPOSITORY / "rules" / "cases"


def rules_with_version(target: Path, version: str) -> Path:
    """A rules folder: the shipped one plus a test-only version from tests/rulesets/.

    The test version starts as a copy of the shipped 2025-01-01 folder; the files in
    tests/rulesets/<version>/ replace their namesakes, as a policy officer's edit would.
    """
    import shutil

    shutil.copytree(REPOSITORY / "rules", target)
    shutil.copytree(REPOSITORY / "rules" / "2025-01-01", target / version)
    for changed in (Path(__file__).parent / "rulesets" / version).glob("*.yaml"):
        shutil.copy(changed, target / version / changed.name)
    return target


@pytest.fixture(scope="session")
def rules_2026_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shipped rules and the test-only version 2026-01-01 (labour market training produced by the area)."""
    return rules_with_version(tmp_path_factory.mktemp("rules-2026") / "rules", "2026-01-01")


@pytest.fixture(scope="session")
def server_2026(database_url: str, rules_2026_dir: Path) -> Iterator[Server]:
    """The service with both versions loaded, on each database."""
    settings = Settings(database_url=database_url, rules_dir=rules_2026_dir, pseudonym_key=TEST_PSEUDONYM_KEY)
    with Server(settings) as running:
        yield running


# --- the web UI ------------------------------------------------------------------------

UserMaker = Callable[..., tuple[str, str]]
TEST_PASSWORD = "correct horse battery staple"


@pytest.fixture
def make_user(database_url: str, api: httpx.Client) -> Iterator[UserMaker]:
    """Make a UI account in the test database; returns (username, password).

    It leans on `api` to empty the decision log after the test, and removes its users.
    """
    from app.access.users import create_user
    from app.models import LoginFailure, UiSession, User

    engine = make_engine(database_url)
    _, write = make_sessions(engine, info=TEST_CHAIN_INFO)

    def make(
        username: str,
        role: str = "coach",
        municipality: str | None = "244",
        display_name: str = "",
        unit: str | None = None,
    ) -> tuple[str, str]:
        with write() as session:
            create_user(
                session,
                username=username,
                display_name=display_name or username.title(),
                role=Role(role),
                municipality=municipality if role == "coach" else None,
                unit=unit,
                password=TEST_PASSWORD,
            )
        return username, TEST_PASSWORD

    yield make
    with engine.begin() as connection:
        # Their sessions go with them (ON DELETE CASCADE); the login throttle's counts too.
        connection.execute(UiSession.__table__.delete())
        connection.execute(LoginFailure.__table__.delete())
        connection.execute(User.__table__.delete())
    engine.dispose()


def chain_verifies(database_url: str) -> tuple[bool, int, str]:
    """Walk the audit chain of a test database: (intact, links, the operator's summary)."""
    from app.audit import verification

    engine = make_engine(database_url)
    read, _ = make_sessions(engine, info=TEST_CHAIN_INFO)
    with read() as session:
        result = verification.verify(session)
    engine.dispose()
    return result.intact, result.links, result.summary()


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# The browser, for every browser test of the suite: one Playwright and one Chromium per module. Not
# per session: the sync Playwright keeps an event loop running in the main thread while it lives,
# and the tests after a browser module (asyncio.run in tests/rules, say) need that thread free.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium with apt")
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fi-FI")
    yield context.new_page()
    context.close()
