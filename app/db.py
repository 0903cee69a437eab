"""The database engine and sessions, for SQLite and PostgreSQL alike."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import lru_cache
from typing import Any, NamedTuple, TypeAlias, TypeVar, cast

from sqlalchemy import Connection, Dialect, Engine, Insert, Select, create_engine, event, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker
from sqlalchemy.sql.compiler import SQLCompiler

from app.schemas import decode_cursor, encode_cursor

Row = TypeVar("Row")

# A factory of sessions, each entered as `with transaction() as session:` and committed on leaving.
Transaction: TypeAlias = Callable[[], AbstractContextManager[Session]]


def database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever driver the URL names."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, say when transactions begin (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # A writing session takes the write lock at BEGIN: a deferred transaction that read
    # first could otherwise fail at its first write, without waiting, when another
    # writer committed in between.
    immediate = connection.get_execution_options().get("sqlite_immediate", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _sqlite_journals_in_memory(dbapi_connection: Any, _record: Any) -> None:
    # A statement that may fail halfway (a multi-row INSERT, an upsert, one a trigger can abort)
    # keeps the pages it changes in a statement journal, spilled past 64 KiB to a temporary file:
    # for a batch of decisions, an open, an unlink and some 260 writes, 40 % of the storing
    # process's write calls (strace, one worker at 32 connections). In memory they cost a copy.
    dbapi_connection.execute("PRAGMA temp_store=MEMORY")


def make_engine(url: str, *, pre_ping: bool = True, storing: bool = False) -> Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout and real transactions.

    `hide_parameters`: a database error's message would otherwise carry the statement's
    parameters, and with them whatever was bound, into every log that records the error.
    `pre_ping`: PostgreSQL connections are tried before each use, one round trip, so that one
    the server dropped is replaced rather than failing the request that takes it.
    `storing`: the engine stores batches of decisions alone (app/decisions/storing.py); on SQLite
    its temporary files stay in memory. Not every engine's: a report's sort could grow there.
    """
    url = database_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        if storing:
            event.listen(engine, "connect", _sqlite_journals_in_memory)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=pre_ping, pool_size=10, max_overflow=20, hide_parameters=True)


def refresh_sqlite_statistics(engine: Engine, *, grown: float = 2.0, least: int = 1000) -> bool:
    """ANALYZE a SQLite database whose decision log has no statistics yet or has grown `grown` times since.

    Without statistics SQLite's planner takes an equality on any indexed column to match a
    few rows: for a coach's scope (home municipality OR handler) it sorted a hundred thousand
    rows, 400 ms on a million decisions, against 3 ms with statistics. A full ANALYZE of a
    million decisions takes about 1.4 s. PostgreSQL keeps its own. True when it ran.
    """
    if engine.dialect.name != "sqlite":
        return False
    with engine.begin() as connection:
        try:
            rows = connection.execute(text("SELECT max(seq) FROM decisions")).scalar() or 0
        except OperationalError:  # not migrated yet: /readyz says so
            return False
        has_stats = connection.execute(text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'")).first()
        stat = has_stats and connection.execute(text("SELECT stat FROM sqlite_stat1 WHERE tbl = 'decisions'")).scalar()
        analysed = int(stat.split()[0]) if stat else 0
        if rows < least or rows < analysed * grown:
            return False
        connection.execute(text("ANALYZE"))
    return True


class SqliteWriteLock:
    """The turn to write a SQLite file, taken in order by the threads of this process and by its sibling workers.

    SQLite has one writer at a time, and one that finds the file locked waits in its busy
    handler, which sleeps in growing steps (1, 2, 5 … 100 ms) and looks again: with two workers
    busy, a writer slept through most of the other's turns, and p99 latency went to hundreds of
    milliseconds. Here a writer waits on a lock the kernel hands over the moment it is released:
    a thread lock, then an flock(2) on a file beside the database, which every process serving it
    takes the same way. Other programs (sqlite3, a backup) still meet the busy timeout.
    """

    def __init__(self, database_path: str | None) -> None:
        self._threads = threading.Lock()
        self._path = f"{database_path}-writer.lock" if database_path else None  # None: in memory, one process
        self._file: int | None = None

    def __enter__(self) -> None:
        self._threads.acquire()
        try:
            if self._path is not None:
                if self._file is None:
                    self._file = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(self._file, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            if self._file is not None:
                fcntl.flock(self._file, fcntl.LOCK_UN)
        finally:
            self._threads.release()


def make_sessions(engine: Engine, *, info: dict[str, Any] | None = None) -> tuple[sessionmaker[Session], Transaction]:
    """Session factories for reading and for writing; a write session is one transaction.

    `info` goes into every session's `info`: the audit chain's keys travel there. On SQLite a
    write transaction first takes its turn (SqliteWriteLock).
    """
    read = sessionmaker(engine, expire_on_commit=False, info=info)
    writing = sessionmaker(engine.execution_options(sqlite_immediate=True), expire_on_commit=False, info=info)
    lock: AbstractContextManager[Any] = nullcontext()
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        lock = SqliteWriteLock(database if database and database != ":memory:" else None)

    @contextmanager
    def write() -> Iterator[Session]:
        with lock, writing() as session, session.begin():
            yield session

    return read, write


def where_all(
    statement: Select[Row], equal: dict[Any, Any], ranges: Sequence[tuple[Any, Any, Any]] = ()
) -> Select[Row]:
    """Add the filters that were given: `column == value`, and `start <= column < end` ranges."""
    for column, value in equal.items():
        if value is not None:
            statement = statement.where(column == value)
    for column, start, end in ranges:
        if start is not None:
            statement = statement.where(column >= start)
        if end is not None:
            statement = statement.where(column < end)
    return statement


def newest_first(
    session: Session, query: Select[Row], seq: InstrumentedAttribute[int], *, cursor: str | None, limit: int
) -> tuple[Sequence[Row], str | None]:
    """A page of `query`'s rows, highest `seq` first, after `cursor`; and the next page's cursor (None at the end)."""
    if cursor is not None:
        query = query.where(seq < decode_cursor(cursor))
    rows = session.scalars(query.order_by(seq.desc()).limit(limit + 1)).all()
    next_cursor = encode_cursor(getattr(rows[limit - 1], seq.key)) if len(rows) > limit else None
    return rows[:limit], next_cursor


def dialect_insert(session: Session) -> Callable[..., Any]:
    """The database's own INSERT, which can say what to do ON CONFLICT."""
    return sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgresql_insert


def insert_rows(connection: Connection, statement: Insert, rows: Sequence[Mapping[str, Any]]) -> None:
    """Execute an INSERT (or an INSERT .. ON CONFLICT upsert) once for each row, binding values as SQLAlchemy does.

    The writer's batch inserts many rows into several tables, and SQLAlchemy's executemany works
    through each parameter of each row anew (construct_params, each type's bind processor found
    by name, the TypeDecorators): without it a decision cost 1 to 9 % less CPU to store
    (bench.writer, both databases, batches of 1 to 16; bench/RESULTS.md). Here the statement is
    compiled once per dialect and set of columns, each column's bind processor is found once,
    and the rows go to the driver's executemany through those processors: the same statement
    text, the same values bound, the same bytes stored (tests/test_db.py compares them). The
    rows must give every column that has a Python-side default, and the statement returns nothing.
    """
    if not rows:
        return
    compiled = _compiled_insert(statement, connection.dialect, tuple(rows[0]))
    bound = [
        tuple(row[column] if process is None else process(row[column]) for column, process in compiled.parameters)
        for row in rows
    ]
    if compiled.names is None:
        connection.exec_driver_sql(compiled.sql, bound)
    else:  # psycopg binds by name: %(column)s
        connection.exec_driver_sql(compiled.sql, [dict(zip(compiled.names, values, strict=True)) for values in bound])


class _CompiledInsert(NamedTuple):
    sql: str
    # The row's key of each parameter, in the statement's order, with its type's bind processor if it has one.
    parameters: tuple[tuple[str, Callable[[Any], Any] | None], ...]
    names: tuple[str, ...] | None  # the parameters' names, for a driver that binds by name; None: by position


@lru_cache(maxsize=64)
def _compiled_insert(statement: Insert, dialect: Dialect, columns: tuple[str, ...]) -> _CompiledInsert:
    """`statement` compiled for rows of these columns, as SQLAlchemy compiles it for an executemany."""
    compiled = cast(SQLCompiler, statement.compile(dialect=dialect, column_keys=list(columns), for_executemany=True))
    if compiled.insert_prefetch or compiled.effective_returning:
        raise ValueError("insert_rows: the rows must give every column with a Python-side default; nothing returned")
    order = compiled.positiontup if compiled.positional else list(compiled.binds)
    assert order is not None  # a positional compilation has its order
    binds = [compiled.binds[name] for name in order]
    unknown = {bind.key for bind in binds} - set(columns)
    if unknown:
        raise ValueError(f"insert_rows: the statement binds values that are not the rows' columns: {sorted(unknown)}")
    return _CompiledInsert(
        sql=compiled.string,
        parameters=tuple((bind.key, bind.type.dialect_impl(dialect).bind_processor(dialect)) for bind in binds),
        names=None if compiled.positional else tuple(compiled.escaped_bind_names.get(name, name) for name in order),
    )
