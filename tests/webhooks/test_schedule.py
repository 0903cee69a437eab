"""The retry schedule: the specification's steps with jitter, Retry-After, and the setting that changes it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from app.config import WEBHOOK_RETRY_SCHEDULE, Settings
from app.webhooks.delivery import next_delay, retry_after_seconds


def test_each_failure_waits_its_step_with_up_to_a_tenth_added_and_the_last_one_is_final() -> None:
    for attempts, step in enumerate(WEBHOOK_RETRY_SCHEDULE[1:], start=1):
        delays = [next_delay(WEBHOOK_RETRY_SCHEDULE, attempts, None) for _ in range(50)]
        assert all(d is not None and step <= d <= step * 1.1 for d in delays)
    assert next_delay(WEBHOOK_RETRY_SCHEDULE, len(WEBHOOK_RETRY_SCHEDULE), None) is None
    assert WEBHOOK_RETRY_SCHEDULE == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)


def test_a_longer_retry_after_is_honoured_and_a_shorter_one_is_not_a_shortcut() -> None:
    assert next_delay(WEBHOOK_RETRY_SCHEDULE, 1, 120.0) == 120.0
    delay = next_delay(WEBHOOK_RETRY_SCHEDULE, 2, 1.0)
    assert delay is not None
    assert delay >= 300


def test_retry_after_is_read_as_seconds_or_an_http_date_and_capped_at_a_day() -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("30", now) == 30.0
    assert retry_after_seconds(format_datetime(now + timedelta(minutes=2), usegmt=True), now) == 120.0
    assert retry_after_seconds("9999999", now) == 86_400.0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


def test_the_schedule_is_set_in_seconds_and_a_bad_one_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REITTI_WEBHOOK_RETRY_SCHEDULE", "0, 1.5,60")
    assert Settings.from_env().webhook_retry_schedule == (0.0, 1.5, 60.0)
    monkeypatch.setenv("REITTI_WEBHOOK_RETRY_SCHEDULE", "0,five")
    with pytest.raises(ValueError, match="REITTI_WEBHOOK_RETRY_SCHEDULE"):
        Settings.from_env()
    monkeypatch.setenv("REITTI_WEBHOOK_RETRY_SCHEDULE", "0,-5")
    with pytest.raises(ValueError, match="REITTI_WEBHOOK_RETRY_SCHEDULE"):
        Settings.from_env()
