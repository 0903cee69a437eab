"""The register's rows and the worklist items of newly stored decisions, in the transaction that stores them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session

from app.db import dialect_insert, insert_rows
from app.models import AnnouncedKind, Anomaly, CustomerHolder, Customership, ItemKind, WorklistItem
from app.webhooks.outbox import Announcement

# The unit that holds a customer while the plan's OEO studies last (CATALOGUE §4.5, 2.2.3 a).
OEO_UNIT = "central-oeo"
OEO_DURING_STUDIES = "oeo.plan_update"
OEO_END = "oeo.end"
# A customer the register has not seen is held by the coach of their home municipality: the
# catalogue's H (§2), whom every central or purchased service is referred from. A customer of
# another area (customership kind `other_area`) has no such coach.
LOCAL_UNIT_PREFIX = "local-"
OTHER_AREA = "other_area"


@dataclass(frozen=True)
class Handover:
    """A decision that moves the customership from one unit to another."""

    decision_seq: int
    decision_id: str
    event_id: str
    event_type: str
    client: str
    occurred_at: datetime
    decided_at: datetime
    from_unit: str
    to_unit: str
    anomaly: str | None

    def announcement(self) -> Announcement:
        """What other systems hear: the decision that moved the customer, from which unit to which.

        A handover has no id of its own: a decision moves a customer once, so it is named by the decision.
        """
        return Announcement(
            kind=AnnouncedKind.handover,
            record_id=self.decision_id,
            decision_id=self.decision_id,
            event_id=self.event_id,
            event_type=self.event_type,
            client=self.client,
            units=(self.from_unit, self.to_unit),
            occurred_at=self.occurred_at,
            recorded_at=self.decided_at,
            path=f"/v1/decisions/{self.decision_id}",
            record={"from_unit": self.from_unit, "to_unit": self.to_unit, "anomaly": self.anomaly},
        )


# The register's latest row of a customer: (occurred_at, decision_seq, unit).
Latest = tuple[datetime, int, str]

# The statements of every writer's batch, built once (the values bound at each call): building
# them anew took longer than running them, with a decision or two to a batch.
_INSERT_CUSTOMERSHIPS = insert(Customership)
_INSERT_WORKLIST_ITEMS = insert(WorklistItem)
_LATEST = select(
    CustomerHolder.customer_pseudonym, CustomerHolder.occurred_at, CustomerHolder.decision_seq, CustomerHolder.unit
).where(CustomerHolder.customer_pseudonym.in_(bindparam("pseudonyms", expanding=True)))
_HOLDER_BEFORE = (
    select(Customership.occurred_at, Customership.decision_seq, Customership.unit)
    .where(
        Customership.customer_pseudonym == bindparam("pseudonym"),
        (Customership.occurred_at < bindparam("occurred_at"))
        | ((Customership.occurred_at == bindparam("occurred_at")) & (Customership.decision_seq < bindparam("seq"))),
    )
    .order_by(Customership.occurred_at.desc(), Customership.decision_seq.desc())
    .limit(1)
)


def record_routing(session: Session, decisions: Sequence[Mapping[str, Any]]) -> list[Announcement]:
    """Put newly stored decisions in the customership register and on the worklists of the units they concern.

    `decisions` are the decision log's rows just inserted (columns with their seq). Called in the
    writer's batch after the chain was appended, so with the chain lock held: no other writer
    changes the register meanwhile. A few statements for the whole batch. What is to be announced
    of the handovers they made, for the caller to announce in this transaction (`create_handovers`).
    """
    if not decisions:
        return []
    register_rows = _register_rows(session, decisions)
    if register_rows:
        insert_rows(session.connection(), _INSERT_CUSTOMERSHIPS, register_rows)
    by_seq = {row["decision_seq"]: row for row in register_rows}
    handovers = []
    for d in decisions:
        row = by_seq.get(d["seq"])
        from_unit = (row["previous_unit"] or _home_unit(d)) if row else None
        if row is None or from_unit is None or from_unit == row["unit"]:
            continue
        handovers.append(
            Handover(
                decision_seq=d["seq"],
                decision_id=d["decision_id"],
                event_id=d["event_id"],
                event_type=d["event_type"],
                client=d["client"],
                occurred_at=d["occurred_at"],
                decided_at=d["decided_at"],
                from_unit=from_unit,
                to_unit=row["unit"],
                anomaly=row["anomaly"],
            )
        )
    handed = {(h.decision_seq, unit) for h in handovers for unit in (h.from_unit, h.to_unit)}
    new_work = [
        item
        for d in decisions
        for item in _new_work(d, by_seq.get(d["seq"]))
        if (item["decision_seq"], item["unit"]) not in handed
    ]
    return create_handovers(session, handovers, beside=new_work)


def create_handovers(
    session: Session, handovers: Sequence[Handover], *, beside: Sequence[Mapping[str, Any]] = ()
) -> list[Announcement]:
    """A handover was created: an incoming item on the new holder's worklist, an outgoing one on the old holder's.

    The one place where handovers come into being, and so where what other systems are told of
    them is made: the caller announces it in the same transaction (the webhooks' outbox). The
    writer's batch announces its decisions and their handovers together, with one read of the
    subscriptions. `beside` are other worklist items of the transaction, written in the same
    INSERT: one statement a batch rather than two.
    """
    items = list(beside)
    for handover in handovers:
        common = {
            "decision_seq": handover.decision_seq,
            "decision_id": handover.decision_id,
            "event_type": handover.event_type,
            "decided_at": handover.decided_at,
            "anomaly": handover.anomaly,
            "answered_at": None,
        }
        items.append(
            {**common, "unit": handover.to_unit, "kind": ItemKind.handover_in, "other_unit": handover.from_unit}
        )
        items.append(
            {**common, "unit": handover.from_unit, "kind": ItemKind.handover_out, "other_unit": handover.to_unit}
        )
    if items:
        insert_rows(session.connection(), _INSERT_WORKLIST_ITEMS, items)
    return [handover.announcement() for handover in handovers]


def _home_unit(decision: Mapping[str, Any]) -> str | None:
    """The customer's default holder when the register has none: the home municipality's local unit."""
    customership = decision["decision"].get("customership") or {}
    if customership.get("kind") == OTHER_AREA:
        return None
    return f"{LOCAL_UNIT_PREFIX}{decision['home_municipality']}"


def _new_work(decision: Mapping[str, Any], register_row: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The `new` items of a decision: for its handler, its provider and each task's unit, once each.

    Where the register and the rule disagree, the OEO experts and the holder see it too.
    """
    units = [decision["handler_unit"], decision["provider_unit"]]
    units += [task["unit"] for task in decision["decision"].get("tasks", []) if task.get("unit")]
    anomaly = register_row["anomaly"] if register_row else None
    if anomaly is not None:
        units += [OEO_UNIT, register_row["previous_unit"] or _home_unit(decision)]  # type: ignore[index]
    return [
        {
            "decision_seq": decision["seq"],
            "unit": unit,
            "kind": ItemKind.new,
            "decision_id": decision["decision_id"],
            "event_type": decision["event_type"],
            "decided_at": decision["decided_at"],
            "other_unit": None,
            "anomaly": anomaly,
            "answered_at": None,
        }
        for unit in dict.fromkeys(units)
        if unit is not None
    ]


def _register_rows(session: Session, decisions: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The register's rows of the decisions that name a customership, each with the holder before it."""
    named = sorted(
        (d for d in decisions if d["customership_unit"] is not None), key=lambda d: (d["occurred_at"], d["seq"])
    )
    if not named:
        return []
    latest = _latest(session, {d["customer_pseudonym"] for d in named})
    changed: dict[str, Latest] = {}
    in_batch: dict[str, list[Latest]] = {}
    rows = []
    for d in named:
        pseudonym = d["customer_pseudonym"]
        at = (d["occurred_at"], d["seq"])
        known = latest.get(pseudonym)
        if known is None or (known[0], known[1]) < at:
            previous = known[2] if known else None
            latest[pseudonym] = changed[pseudonym] = (*at, d["customership_unit"])
        else:  # it arrived late: the holder as of its own time, and the later rows stay as they are
            earlier = [row for row in in_batch.get(pseudonym, []) if (row[0], row[1]) < at]
            stored = _holder_before(session, pseudonym, *at)
            candidates = earlier + ([stored] if stored else [])
            previous = max(candidates, key=lambda row: (row[0], row[1]))[2] if candidates else None
        in_batch.setdefault(pseudonym, []).append((*at, d["customership_unit"]))
        rows.append(
            {
                "decision_seq": d["seq"],
                "decision_id": d["decision_id"],
                "customer_pseudonym": pseudonym,
                "occurred_at": d["occurred_at"],
                "event_type": d["event_type"],
                "unit": d["customership_unit"],
                "role": d["customership_role"],
                "previous_unit": previous,
                "anomaly": _anomaly(d["event_type"], previous),
            }
        )
    _keep_latest(session, changed)
    return rows


def _anomaly(event_type: str, previous: str | None) -> str | None:
    """Where the register contradicts what the rule assumes; the decision stays as the rules made it."""
    if previous == OEO_UNIT:
        return None
    if event_type == OEO_DURING_STUDIES:
        return Anomaly.plan_update_outside_oeo
    if event_type == OEO_END:
        return Anomaly.oeo_end_without_start
    return None


def _latest(session: Session, pseudonyms: Iterable[str]) -> dict[str, Latest]:
    """Each customer's latest row in the register, from the holders kept beside it: one statement for the batch."""
    rows = session.connection().execute(_LATEST, {"pseudonyms": list(pseudonyms)})
    return {pseudonym: (occurred_at, seq, unit) for pseudonym, occurred_at, seq, unit in rows}


def _keep_latest(session: Session, changed: Mapping[str, Latest]) -> None:
    """Write the customers' new latest rows; the condition keeps a later row should another writer have one."""
    if not changed:
        return
    rows = [
        {"customer_pseudonym": pseudonym, "occurred_at": at, "decision_seq": seq, "unit": unit}
        for pseudonym, (at, seq, unit) in changed.items()
    ]
    insert_rows(session.connection(), _keep_latest_statement(dialect_insert(session)), rows)


@lru_cache(maxsize=2)
def _keep_latest_statement(insert: Callable[..., Any]) -> Any:
    """The upsert of `_keep_latest`, built once per dialect: its `excluded` alias copies each column
    of the table, and building it took longer than running it, in every batch."""
    statement = insert(CustomerHolder)
    newer = (CustomerHolder.occurred_at < statement.excluded.occurred_at) | (
        (CustomerHolder.occurred_at == statement.excluded.occurred_at)
        & (CustomerHolder.decision_seq < statement.excluded.decision_seq)
    )
    return statement.on_conflict_do_update(
        index_elements=["customer_pseudonym"],
        set_={name: statement.excluded[name] for name in ("occurred_at", "decision_seq", "unit")},
        where=newer,
    )


def _holder_before(session: Session, pseudonym: str, occurred_at: datetime, seq: int) -> Latest | None:
    """The stored row just before (occurred_at, seq): for an event that arrives after later ones."""
    values = {"pseudonym": pseudonym, "occurred_at": occurred_at, "seq": seq}
    row = session.connection().execute(_HOLDER_BEFORE, values).first()
    return (row.occurred_at, row.decision_seq, row.unit) if row else None
