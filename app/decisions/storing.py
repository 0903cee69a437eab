"""The storing process: a worker's decision transactions, run beside its event loop rather than on it.

A worker's writer thread (app/decisions/writer.py) shares the interpreter's lock with the event
loop: every millisecond of Python it spent on a batch (the rows, the chain's links, the counts,
the register, the worklists, the outbox) was a millisecond in which no request was read or
answered. Under wrk (one worker, SQLite, 32 connections) the loop's own work came to about
0.75 ms a request and the batch's to as much again: in one process they add up, in two they
overlap, each on a core of its own.

The worker's event loop forms the batches (`ProcessWriter`). Each batch's rows (plain values) cross
a pipe to this process, which stores them in one transaction exactly as the writer thread would
have (`StoringHere`), and what became of each row comes back. A request is still answered only after
the transaction that holds its decision has committed. The process ends when its worker closes
the pipe, and also when the worker dies: its end of the pipe closes with it.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any, NamedTuple, NoReturn

from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from app.audit.keys import ChainKeys, session_info
from app.db import make_engine, make_sessions
from app.decisions.store import Row, Stored, Submission
from app.decisions.writer import MAX_BATCH, RowOutcome, StoringHere, log_one_by_one, settle
from app.errors import Unauthenticated

log = logging.getLogger("reitti")

# How long a closing worker waits for its storing process to finish the batch it holds.
CLOSE_SECONDS = 30


def can_store_apart(database_url: str) -> bool:
    """Whether another process can open this database: not so an in-memory SQLite one."""
    url = make_url(database_url)
    return url.get_backend_name() != "sqlite" or url.database not in (None, "", ":memory:")


class StoringProcess:
    """Stores a worker's batches in a process of its own; called from one thread alone (`ProcessWriter`'s loop)."""

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
        self.send(batch)
        return self.receive()

    def send(self, batch: Sequence[tuple[Row, int | None]]) -> None:
        """Hand a batch over; its answer is `receive`'s. OperationalError when the process was lost."""
        try:
            self._pipe.send(list(batch))
        except OSError as lost:
            self._lost(lost)

    def receive(self) -> list[RowOutcome]:
        """What became of each row of the batch sent; OperationalError when the database is away or the process lost."""
        try:
            said, outcome = self._pipe.recv()
        except (EOFError, OSError) as lost:
            self._lost(lost)
        if said == "stored":
            stored: list[RowOutcome] = outcome
            return stored
        if said == "database":
            raise OperationalError("storing a batch", None, RuntimeError(outcome))
        raise RuntimeError(f"storing a batch failed: {outcome}")  # the type only: its text may carry values

    def fileno(self) -> int:
        """The worker's end of the pipe, readable when an answer has come (or the process is gone)."""
        return self._pipe.fileno()

    def _lost(self, lost: BaseException) -> NoReturn:
        # The process died (killed, out of memory): whether its batch committed is not known, and
        # a retry finds out (a stored event is answered as a repeat). A new one takes the next batch.
        log.error("the storing process was lost (%s); starting another", type(lost).__name__)
        self._process.join(timeout=1)
        self._start()
        raise OperationalError("storing a batch", None, lost) from None

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


class _Queued(NamedTuple):
    submission: Submission
    key_id: int | None
    future: asyncio.Future[Stored | Unauthenticated]


class ProcessWriter:
    """A worker's writer when a storing process stores its batches: the event loop hands them over itself.

    `DecisionWriter`'s thread formed each batch, sent it, waited for the answer and settled it. With
    a storing process the waiting is the process's, and the thread only passed each batch across
    the interpreter's lock twice: the loop waited for the lock behind it, and the answers reached
    the loop late. One worker on SQLite at 32 connections answered 2,650-2,750 events a second
    with the thread, a third of the machine idle, and 3,190-3,290 without it (alternating runs,
    issue 17). Here the loop sends a batch when none is in flight; the pipe, watched by the loop,
    brings the answer, and what queued meanwhile goes next. A request is still answered only
    after the transaction that holds its decision has committed.
    """

    def __init__(self, process: StoringProcess, max_batch: int = MAX_BATCH) -> None:
        self._process = process
        self._max_batch = max_batch
        self._queued: deque[_Queued] = deque()
        self._alone: deque[_Queued] = deque()  # of a batch that failed in the process: stored one by one
        self._in_flight: list[tuple[_Queued, Row]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def store(self, submission: Submission, *, key_id: int | None) -> Stored | Unauthenticated:
        """What storing the submission came to, once its transaction has committed (`DecisionWriter.store`)."""
        self._loop = asyncio.get_running_loop()
        future: asyncio.Future[Stored | Unauthenticated] = self._loop.create_future()
        self._queued.append(_Queued(submission, key_id, future))
        if self._in_flight is None:
            self._send_next()
        return await future

    def close(self) -> None:
        """Store what was queued, then end the storing process; on the event loop's thread, which waits."""
        if self._in_flight is not None:
            assert self._loop is not None  # a batch in flight was sent from it
            self._loop.remove_reader(self._process.fileno())
            self._settle(*self._received())
        while batch := self._next_batch():
            if self._sent(batch):
                self._settle(*self._received())
        self._process.close()

    def _next_batch(self) -> list[tuple[_Queued, Row]]:
        """The submissions to store next, with their rows: those of a failed batch one at a time."""
        source, most = (self._alone, 1) if self._alone else (self._queued, self._max_batch)
        batch: list[tuple[_Queued, Row]] = []
        while source and len(batch) < most:
            queued = source.popleft()
            if queued.future.done():  # its client went away before its turn: never answered, not stored
                continue
            try:
                row = queued.submission.row()
            except Exception as error:  # this submission cannot be stored; the others can
                queued.future.set_exception(error)
                continue
            batch.append((queued, row))
        return batch

    def _send_next(self) -> None:
        while batch := self._next_batch():
            if self._sent(batch):
                assert self._loop is not None  # set by store, which sends
                self._loop.add_reader(self._process.fileno(), self._answered)
                return

    def _sent(self, batch: list[tuple[_Queued, Row]]) -> bool:
        """Whether the batch went to the process, now in flight; if the process was lost, each request says so."""
        try:
            self._process.send([(row, queued.key_id) for queued, row in batch])
        except OperationalError as lost:  # a new process takes the next batch
            self._settle(batch, lost)
            return False
        self._in_flight = batch
        return True

    def _answered(self) -> None:
        assert self._loop is not None
        self._loop.remove_reader(self._process.fileno())  # before receive: a lost process's pipe is replaced
        self._settle(*self._received())
        self._send_next()

    def _received(self) -> tuple[list[tuple[_Queued, Row]], list[RowOutcome] | Exception]:
        """The batch in flight and its answer: what became of each row, or the error of them all."""
        batch, self._in_flight = self._in_flight or [], None
        try:
            return batch, self._process.receive()
        except OperationalError as error:  # the database is away, or the process was lost: each request says so
            return batch, error
        except Exception as error:
            if len(batch) == 1:
                return batch, error
            # Something in one submission, not the database: each is stored alone, so that one bad
            # submission fails only its own request.
            log_one_by_one(len(batch), error)
            self._alone.extend(queued for queued, _ in batch)
            return [], error

    @staticmethod
    def _settle(batch: Sequence[tuple[_Queued, Row]], outcomes: Sequence[RowOutcome] | Exception) -> None:
        """Answer each request of the batch, but those whose client went away meanwhile."""
        if isinstance(outcomes, Exception):
            for queued, _ in batch:
                if not queued.future.done():
                    queued.future.set_exception(outcomes)
            return
        for (queued, _), outcome in zip(batch, outcomes, strict=True):
            if not queued.future.done():
                settle(queued.future, queued.submission, outcome)


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
