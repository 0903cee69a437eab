"""Failed logins, counted in the database for every worker: per (name, address) pair, and per address.

A name is never locked for everyone: the failures of one (name, address) pair delay only
that pair, by a delay that doubles with each failure (the nth waits `delay`·2^n seconds, up
to `cap`), so that the right password from the coach's own address still gets in while
someone guessing from elsewhere is slowed to a few tries an hour. An address that fails
with many names is stopped for the rest of its window. The counts are rows of
`login_failures`, so that N workers hold one limit, not N.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.db import dialect_insert
from app.errors import ReittiError
from app.models import LoginFailure


class TooManyAttempts(ReittiError):
    """Too many failed logins for this name from this address, or from this address (429)."""

    status = 429
    problem = "too-many-attempts"
    title = "Too many login attempts"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many failed logins; try again in {retry_after} seconds.")
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        """Say when to try again."""
        return {"Retry-After": str(self.retry_after)}


def _subject(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()


def _retry_after(until: datetime, now: datetime) -> int:
    return max(1, math.ceil((until - now).total_seconds()))


@dataclass(frozen=True)
class LoginThrottle:
    """The throttle's limits; its state is the database's."""

    delay: float = 1.0  # seconds; the nth failure of a pair waits delay·2^n
    cap: int = 15 * 60  # the longest a pair waits
    per_address: int = 50  # failures from one address, any names, within `window`
    window: int = 60 * 60  # failures older than this are forgotten

    def _pair(self, name: str, address: str) -> str:
        return _subject("pair", name.strip().lower(), address)

    def check(self, session: Session, name: str, address: str, *, now: datetime | None = None) -> None:
        """Raise TooManyAttempts while this pair waits, or while this address is over its limit."""
        now = now or datetime.now(UTC)
        subjects = {self._pair(name, address): "pair", _subject("address", address): "address"}
        for row in session.scalars(select(LoginFailure).where(LoginFailure.subject.in_(subjects))):
            if row.blocked_until > now:
                raise TooManyAttempts(_retry_after(row.blocked_until, now))

    def failed(self, session: Session, name: str, address: str, *, now: datetime | None = None) -> None:
        """Count a failed login for the pair and the address, in the caller's write transaction."""
        now = now or datetime.now(UTC)
        forgotten = now - timedelta(seconds=self.window)
        session.execute(delete(LoginFailure).where(LoginFailure.last_at < forgotten))
        self._count(session, self._pair(name, address), now, lambda n: min(self.cap, self.delay * 2**n))
        self._count(session, _subject("address", address), now, None)

    def _count(self, session: Session, subject: str, now: datetime, wait: Callable[[int], float] | None) -> None:
        row = session.scalar(select(LoginFailure).where(LoginFailure.subject == subject).with_for_update())
        # An address's count starts again with each window; a pair's grows while it keeps failing.
        fresh = row is None or (wait is None and row.first_at <= now - timedelta(seconds=self.window))
        failures = 1 if fresh or row is None else row.failures + 1
        first = now if fresh or row is None else row.first_at
        if wait is not None:
            blocked_until = now + timedelta(seconds=wait(failures))
        elif failures >= self.per_address:
            blocked_until = first + timedelta(seconds=self.window)
        else:
            blocked_until = now
        values = {"failures": failures, "first_at": first, "last_at": now, "blocked_until": blocked_until}
        insert = dialect_insert(session)(LoginFailure).values(subject=subject, **values)
        session.execute(insert.on_conflict_do_update(index_elements=["subject"], set_=values))

    def succeeded(self, session: Session, name: str, address: str) -> None:
        """A right password clears its pair's count (not the address's)."""
        session.execute(delete(LoginFailure).where(LoginFailure.subject == self._pair(name, address)))
