"""A decision log to report on, and what the log itself says, for the reports' tests.

The events are points of the rules' own input domain (every event type, the area's
municipalities and one outside it), routed by the real engine and stored by store(), as
the service does, on days spread over a year: at Finnish and UTC midnights, around the
changes of summer time and at month ends, where a decision is easily put on the wrong day.
The tests then count the log's rows themselves, in Python, and compare.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Engine, select

from app.access.keys import Principal
from app.db import make_sessions
from app.decisions.overrides import record_override
from app.decisions.store import Submission, store
from app.errors import EventInvalid, InvalidBody
from app.models import Acknowledgement, Decision, ItemKind, Override, OverrideReason, ReturnReason, Role, WorklistItem
from app.rules.engine import RuleEngine
from app.rules.events import read_event
from app.rules.input_domain import points
from app.rules.model import Rules
from app.rules.routing import decide, new_decision_id
from app.schemas import DecisionOut, OverrideIn
from app.time import FINNISH_TIME, finnish_day
from app.worklists.items import acknowledge, return_item
from tests.conftest import TEST_CHAIN_INFO

YEAR = 2025
OUTSIDE_AREA = "outside_area"
ADMIN = Principal(key_id=0, name="test-admin", role=Role.admin, municipality=None)


def moments(rng: random.Random) -> datetime:
    """A time in 2025; one in four on a Finnish or UTC midnight, or a microsecond beside it."""
    day = date(YEAR, 1, 1) + timedelta(days=rng.randrange(365))
    if rng.random() < 0.25:
        edge = rng.choice((datetime.combine(day, time(), FINNISH_TIME), datetime.combine(day, time(), UTC)))
        return (edge + timedelta(microseconds=rng.choice((-1, 0, 1)))).astimezone(UTC)
    return datetime.combine(day, time(), UTC) + timedelta(seconds=rng.randrange(86_400))


def write_log(database: Engine, rules: Rules, engine: RuleEngine, *, count: int, seed: int = 15) -> None:
    """Route `count` events drawn from the input domain and store them through store(), in batches."""
    rng = random.Random(seed)
    ruleset = rules.rulesets[0]
    bodies = list(points(rules, ruleset))
    rng.shuffle(bodies)
    made: list[Submission] = []
    for body in bodies:
        if len(made) == count:
            break
        try:
            event = read_event(body, rules, pseudonym_key=b"reports", ruleset=ruleset)
        except EventInvalid:
            continue
        event = replace(event, event_id=f"report-{len(made)}")
        decided = decide(event, engine=engine, registry=rules.registry).model_dump(mode="json")
        decision = DecisionOut.model_validate(
            {
                **decided,
                "decision_id": new_decision_id(),
                "event_id": event.event_id,
                "decided_at": moments(rng).isoformat(),
            }
        )
        made.append(Submission(rng.choice(("client-a", "client-b")), event, f"fingerprint-{len(made)}", decision))
    _, write = make_sessions(database, info=TEST_CHAIN_INFO)
    for start in range(0, len(made), 50):
        with write() as session:
            store(session, made[start : start + 50])
    # Some decisions overridden in practice, some of them twice (counted once): the override rates.
    for overridden in rng.sample(made, count // 10):
        for _ in range(rng.choice((1, 1, 2))):
            with write() as session:
                body = OverrideIn(
                    handler="central-oeo" if overridden.decision.handler.unit != "central-oeo" else "local-244",
                    reason=OverrideReason.other,
                )
                record_override(
                    session, ADMIN, decision_id=overridden.decision.decision_id, body=body, registry=rules.registry
                )


@dataclass(frozen=True)
class Logged:
    """One decision as the log holds it: what cost sharing counts by."""

    day: date
    home: str
    cost_group: str
    provider: str
    event_type: str
    handler: str
    rule_id: str
    overridden: bool


def read_log(database: Engine) -> list[Logged]:
    """Every decision of the log, straight from its table, on its Finnish day."""
    columns = (
        Decision.decided_at,
        Decision.home_municipality,
        Decision.cost_group,
        Decision.provider_unit,
        Decision.event_type,
        Decision.handler_unit,
        Decision.rule_id,
        Decision.decision_id,
    )
    with database.connect() as connection:
        rows = connection.execute(select(*columns)).all()
        overridden = set(connection.scalars(select(Override.decision_id)))
    return [
        Logged(finnish_day(at), home, group, provider, event_type, handler, rule_id, decision_id in overridden)
        for at, home, group, provider, event_type, handler, rule_id, decision_id in rows
    ]


def line_of(home: str, area: frozenset[str]) -> str:
    """The report's line for a home municipality: its own, or the line of those outside the area."""
    return home if home in area else OUTSIDE_AREA


def counted(
    log: list[Logged], first: date, last: date, area: frozenset[str], by: str | None = None
) -> Counter[tuple[str, ...]]:
    """The log's decisions of [first, last] by (line, cost group), or (line, breakdown key, cost group)."""
    found: Counter[tuple[str, ...]] = Counter()
    for row in log:
        if first <= row.day <= last:
            key = (row.provider if by == "unit" else row.event_type,) if by else ()
            found[(line_of(row.home, area), *key, row.cost_group)] += 1
    return found


def staff_of(unit: str) -> Principal:
    """A key of the unit's staff, as POST /v1/decisions/{id}/acknowledgements is called with."""
    return Principal(key_id=0, name=f"staff-{unit}", role=Role.unit, municipality=None, unit=unit)


def answer_items(database: Engine, *, taken: int, returned: int, seed: int = 15) -> None:
    """Some units answer items of their worklists through the service: `taken` taken, up to `returned` returned.

    The answers are recorded now, so their waiting times run from the log's days in 2025 to today;
    the returned ones are no waiting times, and the tests see that they are not counted.
    """
    rng = random.Random(seed)
    _, write = make_sessions(database, info=TEST_CHAIN_INFO)
    with database.connect() as connection:
        items = connection.execute(
            select(WorklistItem.decision_id, WorklistItem.unit, WorklistItem.kind)
            .where(WorklistItem.kind != ItemKind.returned)
            .order_by(WorklistItem.decision_seq, WorklistItem.unit, WorklistItem.kind)
        ).all()
    # One answer per unit and decision, whichever of its items there: the handovers among them first.
    pairs = list(dict.fromkeys((decision_id, unit) for decision_id, unit, _ in items))
    handed = list(dict.fromkeys((d, u) for d, u, kind in items if kind == ItemKind.handover_in))
    rng.shuffle(pairs)
    chosen = list(dict.fromkeys(handed[: taken // 2] + pairs))[: taken + returned]
    for decision_id, unit in chosen[:taken]:
        with write() as session:
            acknowledge(session, staff_of(unit), decision_id=decision_id, unit=unit)
    for decision_id, unit in chosen[taken:]:
        try:
            with write() as session:
                return_item(
                    session, staff_of(unit), decision_id=decision_id, unit=unit, reason=ReturnReason.other, text=""
                )
        except InvalidBody:  # an outgoing handover, or the sending side itself: nothing to return
            continue


@dataclass(frozen=True)
class UnitAnswers:
    """A unit's handovers and waiting times as the tables themselves say: what the dashboard's panel shows."""

    handovers_in: int = 0
    handovers_out: int = 0
    waits: tuple[float, ...] = ()  # seconds from the decision to the item taken, in order

    @property
    def median(self) -> float | None:
        if not self.waits:
            return None
        middle = len(self.waits) // 2
        return self.waits[middle] if len(self.waits) % 2 else (self.waits[middle - 1] + self.waits[middle]) / 2

    @property
    def p90(self) -> float | None:
        """The nearest rank: the smallest wait that at least 90 % of the unit's waits are at most."""
        if not self.waits:
            return None
        rank = next(n for n in range(1, len(self.waits) + 1) if n * 10 >= 9 * len(self.waits))
        return self.waits[rank - 1]


def read_answers(database: Engine, first: date, last: date) -> dict[str, UnitAnswers]:
    """Each unit's handovers decided on the Finnish days [first, last] (worklist_items) and the waits of
    the items it took on those days (acknowledgements, from their decision's decided_at): units with either.
    """
    handed: Counter[tuple[str, str]] = Counter()
    waits: dict[str, list[float]] = {}
    with database.connect() as connection:
        items = connection.execute(select(WorklistItem.unit, WorklistItem.kind, WorklistItem.decided_at)).all()
        answers = connection.execute(
            select(Acknowledgement.unit, Acknowledgement.outcome, Acknowledgement.recorded_at, Decision.decided_at)
            .select_from(Acknowledgement)
            .join(Decision, Decision.decision_id == Acknowledgement.decision_id)
        ).all()
    for unit, kind, decided_at in items:
        if kind in (ItemKind.handover_in, ItemKind.handover_out) and first <= finnish_day(decided_at) <= last:
            handed[(unit, kind)] += 1
    for unit, outcome, recorded_at, decided_at in answers:
        if outcome == "taken" and first <= finnish_day(recorded_at) <= last:
            waits.setdefault(unit, []).append(max(0.0, (recorded_at - decided_at).total_seconds()))
    units = {unit for unit, _ in handed} | set(waits)
    return {
        unit: UnitAnswers(
            handed[(unit, ItemKind.handover_in)],
            handed[(unit, ItemKind.handover_out)],
            tuple(sorted(waits.get(unit, ()))),
        )
        for unit in units
    }
