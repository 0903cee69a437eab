"""Waiting times: how long each unit's items waited from the decision to the unit taking them."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Acknowledgement, AcknowledgementOutcome, Decision
from app.schemas import WaitingTime, WaitingTimes


def _p90(ordered: Sequence[float]) -> float:
    """The 90th percentile by the nearest rank: a waiting time some item actually had."""
    return ordered[math.ceil(0.9 * len(ordered)) - 1]


def waiting_times(
    session: Session,
    *,
    answered_after: datetime | None = None,
    answered_before: datetime | None = None,
    units: Sequence[str] | None = None,
) -> WaitingTimes:
    """Per unit, of the items taken in [answered_after, answered_before): count, median and p90 seconds.

    From the decision (decided_at) to the acknowledgement; returned items are not waiting times.
    """
    query = (
        select(Acknowledgement.unit, Acknowledgement.recorded_at, Decision.decided_at)
        .join(Decision, Decision.decision_id == Acknowledgement.decision_id)
        .where(Acknowledgement.outcome == AcknowledgementOutcome.taken)
    )
    if answered_after is not None:
        query = query.where(Acknowledgement.recorded_at >= answered_after)
    if answered_before is not None:
        query = query.where(Acknowledgement.recorded_at < answered_before)
    if units is not None:
        query = query.where(Acknowledgement.unit.in_(list(units)))
    waited: dict[str, list[float]] = {}
    for unit, answered_at, decided_at in session.execute(query):
        waited.setdefault(unit, []).append(max(0.0, (answered_at - decided_at).total_seconds()))
    measured = []
    for unit in sorted(waited):
        ordered = sorted(waited[unit])
        measured.append(
            WaitingTime(
                unit=unit, count=len(ordered), median_seconds=statistics.median(ordered), p90_seconds=_p90(ordered)
            )
        )
    return WaitingTimes(answered_after=answered_after, answered_before=answered_before, units=measured)
