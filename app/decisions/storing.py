"""The storing process: a worker's decision transactions, run beside its event loop rather than on it.

A worker's writer thread (app/decisions/writer.py) shares the interpreter's lock with the event
loop: every millisecond of Python it spent on a batch (the rows, the chain's links, the counts,
the register, the worklists, the outbox) was a millisecond in which no request was read or
answered. Under wrk (one worker, SQLite, 32 connections) the loop's own work came to about
0.75 ms a request and the batch's to as much again: in one process they add up, in two they
overlap, each on a core of its own.

The writer thread stays: it forms the batches and waits. Each batch's rows (plain values) cross a
pipe to this process, which stores them in one transaction exactly as the thread would have
(`StoringHere`), and what became of each row comes back. A request is still answered only after
the transaction that holds its decision has committed. The process ends when its worker closes
the pipe, and also when the worker dies: its end of the pipe closes with it.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from app.audit.keys import ChainKeys, session_info
from app.config import STORING_PROCESS
from app.db import make_engine, make_sessions
from app.decisions.store import Row
from app.decisions.writer import RowOutcome, StoringHere

log = logging.getLogger("reitti")

# How long a closing worker waits for its storing process to finish the batch it holds.
CLOSE_SECONDS = 30


def pays_apart(workers: int, cores: int | None = None) -> bool:
    """Whether a storing process for each of `workers` workers pays for itself: only on a core of its own.

    With one worker on two cores, the worker and its storing process each have one. With two
    workers on two cores, four processes took turns on two cores: the batch's rows were pickled,
    piped and switched to for nothing. Storing in each worker's writer thread answered 40 to 70 %
    more events a second there (SQLite and PostgreSQL, 32 connections, alternating runs, issue 17).
    """
    cores = cores or len(os.sched_getaffinity(0))
    return 2 * workers <= cores


def storing_choice(workers: int) -> str:
    """REITTI_STORING_PROCESS for `workers` workers: the operator's, when set; else `pays_apart`'s, on or off.

    `reitti serve` hands it to its workers, and bench.http to the workers it serves, alike.
    """
    return os.environ.get(STORING_PROCESS) or ("on" if pays_apart(workers) else "off")


def can_store_apart(database_url: str) -> bool:
    """Whether another process can open this database: not so an in-memory SQLite one."""
    url = make_url(database_url)
    return url.get_backend_name() != "sqlite" or url.database not in (None, "", ":memory:")


class StoringProcess:
    """Stores the writer's batches in a process of its own; called from the writer thread alone."""

    def __init__(self, database_url: str, chain_keys: ChainKeys) -> None:
        self._arguments = (database_url, chain_keys)
        self._start()

    def _start(self) -> None:
        # spawn, not fork: the worker has threads, and a forked child would inherit their locks.
        context = multiprocessing.get_context("spawn")
        self._pipe, theirs = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(theirs, *self._arguments), name="reitti-storing", daemon=True
        )
        self._process.start()
        theirs.close()

    def __call__(self, batch: Sequence[tuple[Row, int | None]]) -> list[RowOutcome]:
        """What became of each row; OperationalError when the database is away or the process was lost."""
        try:
            self._pipe.send(list(batch))
            answer, outcome = self._pipe.recv()
        except (EOFError, OSError) as lost:
            # The process died (killed, out of memory): whether this batch committed is not
            # known, and a retry finds out (a stored event is answered as a repeat). A new one
            # takes the next batch.
            log.error("the storing process was lost (%s); starting another", type(lost).__name__)
            self._process.join(timeout=1)
            self._start()
            raise OperationalError("storing a batch", None, lost) from None
        if answer == "stored":
            stored: list[RowOutcome] = outcome
            return stored
        if answer == "database":
            raise OperationalError("storing a batch", None, RuntimeError(outcome))
        raise RuntimeError(f"storing a batch failed: {outcome}")  # the type only: its text may carry values

    def close(self) -> None:
        """Let the process finish its batch and end."""
        try:
            self._pipe.send(None)
        except OSError:
            pass  # already gone
        self._process.join(timeout=CLOSE_SECONDS)
        if self._process.is_alive():
            self._process.kill()
        self._pipe.close()


def _serve(pipe: Connection, database_url: str, chain_keys: ChainKeys) -> None:
    """The storing process: a transaction for each batch that arrives, until the pipe closes."""
    # No round trip to try the connection before each batch: a connection the server dropped
    # fails its batch (503, as while the server is away) and the next batch takes a new one.
    engine = make_engine(database_url, pre_ping=False, storing=True)
    _, write = make_sessions(engine, info=session_info(chain_keys))
    storing = StoringHere(write)
    try:
        while True:
            try:
                batch = pipe.recv()
            except EOFError:  # the worker is gone
                return
            if batch is None:
                return
            pipe.send(_stored(storing, batch))
    finally:
        engine.dispose()


def _stored(storing: StoringHere, batch: Sequence[tuple[Row, int | None]]) -> tuple[str, Any]:
    """One batch stored, as the answer that crosses back: what became of each row, or why none was stored."""
    try:
        return "stored", storing(batch)
    except OperationalError as error:
        return "database", type(error.orig).__name__
    except Exception as error:
        # The type only, in the answer and the log: an error's text may carry the statement's values.
        log.error("a batch of %d decisions could not be stored: %s", len(batch), type(error).__name__)
        return "failed", type(error).__name__
