"""The login throttle's rules with the clock injected, on each database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete

from app.access.throttle import LoginThrottle, TooManyAttempts
from app.db import Transaction, make_engine, make_sessions
from app.models import LoginFailure

START = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


@pytest.fixture
def write(database_url: str) -> Iterator[Transaction]:
    engine = make_engine(database_url)
    _, writing = make_sessions(engine)
    yield writing
    with writing() as session:
        session.execute(delete(LoginFailure))
    engine.dispose()


def _waits(write: Transaction, throttle: LoginThrottle, name: str, address: str, now: datetime) -> int | None:
    """How long this pair must wait at `now`, or None when it may try."""
    with write() as session:
        try:
            throttle.check(session, name, address, now=now)
        except TooManyAttempts as error:
            return error.retry_after
    return None


def _fail(write: Transaction, throttle: LoginThrottle, name: str, address: str, now: datetime) -> None:
    with write() as session:
        throttle.failed(session, name, address, now=now)


def test_each_failure_of_a_pair_doubles_its_wait_up_to_the_cap(write: Transaction) -> None:
    throttle = LoginThrottle(delay=1, cap=900)
    now, waits = START, []
    for _ in range(12):
        assert _waits(write, throttle, "kaisa", "10.0.0.9", now) is None
        _fail(write, throttle, "kaisa", "10.0.0.9", now)
        waits.append(_waits(write, throttle, "kaisa", "10.0.0.9", now))
        now += (waits[-1] or 0) * SECOND
    assert waits == [2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900]


def test_the_name_from_another_address_and_another_name_do_not_wait(write: Transaction) -> None:
    throttle = LoginThrottle(delay=60)
    _fail(write, throttle, "Kaisa ", "10.0.0.9", START)
    assert _waits(write, throttle, "kaisa", "10.0.0.9", START + SECOND) == 119  # the name as typed, normalised
    assert _waits(write, throttle, "kaisa", "10.0.0.1", START + SECOND) is None
    assert _waits(write, throttle, "kalle", "10.0.0.9", START + SECOND) is None


def test_a_right_password_clears_its_pair_and_old_failures_are_forgotten(write: Transaction) -> None:
    throttle = LoginThrottle(delay=1, window=3600)
    for step in range(3):
        _fail(write, throttle, "kaisa", "10.0.0.9", START + step * 10 * SECOND)
    with write() as session:
        throttle.succeeded(session, "kaisa", "10.0.0.9")
    _fail(write, throttle, "kaisa", "10.0.0.9", START + 60 * SECOND)
    assert _waits(write, throttle, "kaisa", "10.0.0.9", START + 60 * SECOND) == 2  # the first failure again
    later = START + 2 * 3600 * SECOND
    _fail(write, throttle, "kalle", "10.0.0.9", later)  # failing sweeps out what is older than the window
    assert _waits(write, throttle, "kaisa", "10.0.0.9", later) is None


def test_an_address_failing_with_many_names_is_stopped_for_its_window(write: Transaction) -> None:
    throttle = LoginThrottle(delay=1, per_address=5, window=3600)
    for number in range(5):
        _fail(write, throttle, f"name{number}", "10.0.0.9", START + number * SECOND)
    assert _waits(write, throttle, "kaisa", "10.0.0.9", START + 10 * SECOND) == 3590
    assert _waits(write, throttle, "kaisa", "10.0.0.1", START + 10 * SECOND) is None
    assert _waits(write, throttle, "kaisa", "10.0.0.9", START + 3601 * SECOND) is None


@pytest.mark.parametrize("variable", ["REITTI_LOGIN_DELAY_SECONDS", "REITTI_SESSION_IDLE_MINUTES"])
def test_a_bad_setting_is_refused_by_name(variable: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.config import Settings

    for value in ("soon", "0", "-5"):
        monkeypatch.setenv(variable, value)
        with pytest.raises(ValueError, match=variable):
            Settings.from_env()
    monkeypatch.setenv(variable, "45")
    settings = Settings.from_env()
    assert 45 in (settings.login_delay_seconds, settings.session_idle_minutes)
