"""Worklists and the customership register on a large log, and what they add to POST /v1/events.

Not a test: it measures and prints. The log is written straight into a new database by bulk
inserts: decisions made by the service's own decide() for a sample of valid events (as
bench/audit.py makes them, spread over 2025, a tenth as many customers as decisions), each
batch then given to `register.routing.record_routing`, the very function the writer's batch
calls, so the register and the worklists hold what the service would have written. No chain
links are written: these reads never touch the chain. Then the units work their queues: every
item but the newest 3 % is answered. Timed in process, through the service functions the API
calls: a unit's first worklist page (50 items, oldest first) as its staff, the same with the
read logged (the API's path), and a customer's register as an auditor and as the OEO experts'
staff (whose scope is the worklist's EXISTS). Each p50 of `--repeat` runs.

Then POST /v1/events under wrk with the register and worklists (bench.ceiling:app) and without
them (bench.no_routing:app), in turns, twice each, each on a fresh database: the ratio of the
best of each is the cost, in one run.

    python -m bench.worklists [--rows 1000000] [--databases sqlite postgresql] [--seconds 10]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy import insert, text, update

from app.access.identity import pseudonymise
from app.access.keys import Principal
from app.config import REPOSITORY
from app.db import make_engine, make_sessions, refresh_sqlite_statistics
from app.decisions import store
from app.decisions.reads import Reader
from app.errors import NotFound
from app.models import Decision, Role, WorklistItem
from app.register.routing import record_routing
from app.rules.loader import load_rules
from app.rules.routing import new_decision_id
from app.schemas import WorklistQuery
from app.webhooks.outbox import Announcement, announce
from app.worklists import customers, items, reads
from bench.audit import AUDITOR, BENCH_CHAIN_INFO, FIRST_DAY, database, decided_sample
from bench.http import Run, wrk

BATCH = 5000
OPEN_SHARE = 0.03
PORT = 8791  # apart from bench/http.py's, which others may be running
UNITS = ("central-oeo", "local-564", "central-eu", "local-244")


def fill(url: str, rows: int) -> list[str]:
    """Write `rows` decisions, their register rows and worklist items in bulk; the customers' pseudonyms."""
    rules = load_rules(REPOSITORY / "rules")
    sample = decided_sample(rules, 400)
    customers_ = customer_pseudonyms(rows)
    engine = make_engine(url)
    _, write = make_sessions(engine, info=BENCH_CHAIN_INFO)
    rng = random.Random(7)
    step = timedelta(days=360) / rows
    seq = 0
    started = time.perf_counter()
    # Each sample's row once; a row of the log is a copy with its own ids, customer and times.
    bases = [
        store.decision_values(client="bench", event=event, fingerprint="", decision=decision)
        for event, decision in sample
    ]
    while seq < rows:
        batch = []
        for _ in range(min(BATCH, rows - seq)):
            base = bases[seq % len(bases)]
            decided = FIRST_DAY + step * seq
            occurred = decided - timedelta(minutes=rng.randrange(1, 3 * 24 * 60))
            pseudonym = rng.choice(customers_)
            seq += 1
            ids = {"decision_id": new_decision_id(), "event_id": f"bench-{seq}"}
            times = {
                "occurred_at": occurred.isoformat(),
                "decided_at": decided.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            }
            event = base["event"]
            batch.append(
                {
                    **base,
                    **ids,
                    "seq": seq,
                    "request_sha256": hashlib.sha256(ids["event_id"].encode()).hexdigest(),
                    "customer_pseudonym": pseudonym,
                    "occurred_at": occurred,
                    "decided_at": decided,
                    "decision": {**base["decision"], **ids, **times},
                    "event": {
                        **event,
                        "event_id": ids["event_id"],
                        "occurred_at": times["occurred_at"],
                        "customer": {**event["customer"], "pseudonym": pseudonym},
                    },
                }
            )
        with write() as session:
            session.connection().execute(insert(Decision), batch)
            announce(session, record_routing(session, batch))
    took = time.perf_counter() - started
    print(f"  wrote {rows:,} decisions with their register rows and worklist items in {took:.0f} s")
    engine.dispose()
    settle(url)
    return customers_


def customer_pseudonyms(rows: int) -> list[str]:
    """The customers a log of `rows` decisions is written for: a tenth as many."""
    return [pseudonymise(b"bench", f"customer-{n}") for n in range(max(rows // 10, 1))]


def settle(url: str) -> None:
    """The units work their queues: every item but the newest 3 % answered; then the planner's statistics."""
    engine = make_engine(url)
    _, write = make_sessions(engine, info=BENCH_CHAIN_INFO)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT max(seq) FROM decisions")).scalar_one()
    cutoff = int(rows * (1 - OPEN_SHARE))
    with write() as session:
        answered = update(WorklistItem).where(WorklistItem.decision_seq <= cutoff)
        session.execute(answered.values(answered_at=WorklistItem.decided_at))
    with engine.connect() as connection:
        counted = {
            table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608
            for table in ("customerships", "worklist_items")
        }
    register_rows, item_rows = counted["customerships"], counted["worklist_items"]
    print(f"  {register_rows:,} register rows, {item_rows:,} worklist items, the newest 3 % open")
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    else:
        refresh_sqlite_statistics(engine, grown=0)
    engine.dispose()


def p50(run: Callable[[], Any], repeat: int) -> float:
    """The median of `repeat` runs, in milliseconds (after one run that warms the caches)."""
    run()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def time_reads(url: str, customers_: list[str], repeat: int) -> None:
    """p50 of a unit's worklist page and of a customer's register, in process."""
    engine = make_engine(url)
    read, write = make_sessions(engine, info=BENCH_CHAIN_INFO)
    rules = load_rules(REPOSITORY / "rules")
    known = rules.registry.units
    query = WorklistQuery(limit=50)
    for unit in UNITS:
        staff = Principal(key_id=0, name=f"bench-{unit}", role=Role.unit, municipality=None, unit=unit)
        with read() as session:
            page = items.worklist(session, staff, unit, query, known_units=known)
            plain = p50(partial(items.worklist, session, staff, unit, query, known_units=known), repeat)
            logged = p50(
                partial(reads.read_worklist, Reader(staff, session, write), unit, query, known_units=known), repeat
            )
        print(
            f"  worklist of {unit:12} {page.open_items:7,} open: first page p50 {plain:6.2f} ms,"
            f" with the read logged {logged:6.2f} ms"
        )
    rng = random.Random(11)
    oeo = Principal(key_id=0, name="bench-oeo", role=Role.unit, municipality=None, unit="central-oeo")
    for who, principal in (("an auditor", AUDITOR), ("the OEO experts", oeo)):
        asked = [rng.choice(customers_) for _ in range(repeat + 1)]
        with read() as session:
            _register(session, principal, asked[0])  # warms the caches
            took = _per_read(session, principal, asked[1:])
        print(f"  a customer's register as {who}: p50 {took:6.2f} ms")
    engine.dispose()


def _register(session: Any, principal: Principal, pseudonym: str) -> None:
    try:
        customers.customer_register(session, principal, pseudonym)
    except NotFound:  # a customer outside the OEO experts' scope: the 404 is timed as well
        pass


def _per_read(session: Any, principal: Principal, asked: list[str]) -> float:
    """The p50 of one register read each of the customers asked, in milliseconds."""
    times = []
    for pseudonym in asked:
        started = time.perf_counter()
        _register(session, principal, pseudonym)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def store_cost(kind: str, events: int, rounds: int, batch: int = 32) -> None:
    """The writer's batches in process, with and without record_routing, in turns on one database.

    Steadier than HTTP on a busy machine: no server, no client, the same batches each turn.
    """
    from app.decisions.intake import prepare
    from app.rules.engine import RuleEngine
    from bench.run import valid_events

    rules = load_rules(REPOSITORY / "rules")
    engine = RuleEngine()
    for ruleset in rules.rulesets:
        engine.load(ruleset)
    bodies = [body for body, _ in valid_events(rules, events)]
    took: dict[str, list[float]] = {"with": [], "without": []}
    with database(kind) as url:
        database_engine = make_engine(url)
        _, write = make_sessions(database_engine, info=BENCH_CHAIN_INFO)
        for turn in range(rounds):
            for label in ("with", "without"):
                submissions = [
                    prepare(
                        body.model_copy(update={"event_id": f"{label}-{turn}-{n}"}),
                        client="bench",
                        rules=rules,
                        engine=engine,
                        pseudonym_key=b"bench",
                    )
                    for n, body in enumerate(bodies)
                ]
                store.record_routing = record_routing if label == "with" else _nothing  # type: ignore[assignment]
                started = time.perf_counter()
                for start in range(0, len(submissions), batch):
                    with write() as session:
                        store.store(session, submissions[start : start + batch])
                took[label].append(time.perf_counter() - started)
        store.record_routing = record_routing  # type: ignore[assignment]
        database_engine.dispose()
    engine.close()
    each = {label: statistics.median(times) * 1e6 / events for label, times in took.items()}
    print(
        f"\n{kind}, the writer in process, {events:,} events in batches of {batch}, {rounds} turns each:"
        f" {each['with']:.0f} µs an event with, {each['without']:.0f} µs without;"
        f" with/without {each['with'] / each['without']:.2f} (medians)"
    )


def _nothing(session: Any, decisions: Any) -> list[Announcement]:
    """record_routing switched off: no register rows, no items, no handovers to announce."""
    return []


def post_cost(kind: str, seconds: int, connections: int) -> None:
    """POST /v1/events with and without the register and worklists, in turns, each on a fresh database."""
    from bench.http import serving

    print(f"\n{kind}, 1 worker, {connections} connections, {seconds} s a run:")
    runs: list[Run] = []
    for _ in range(2):
        for label, app in (("with", "bench.ceiling:app"), ("without", "bench.no_routing:app")):
            with database(kind) as url, serving(url, 1, app=app, port=PORT) as (key, _):
                run = wrk(
                    label,
                    REPOSITORY / "bench" / "post_events.lua",
                    key,
                    seconds,
                    connections,
                    base=f"http://127.0.0.1:{PORT}",
                )
                runs.append(run)
                print("  " + run.line(), flush=True)
    best = {label: max(r.per_second for r in runs if r.endpoint == label) for label in ("with", "without")}
    ratio = best["with"] / best["without"]
    print(f"  POST /v1/events with/without the register and worklists: {ratio:.2f} (best of two each)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--skip-post", action="store_true", help="only the reads on a large log")
    parser.add_argument("--store-events", type=int, default=3000, help="events a turn of the in-process writer")
    parser.add_argument("--skip-reads", action="store_true", help="only the cost on POST /v1/events")
    parser.add_argument(
        "--existing",
        metavar="URL",
        help="time the reads on a log this benchmark filled before (for --rows of that fill), perhaps cut short",
    )
    args = parser.parse_args()
    if args.existing:
        with make_engine(args.existing).connect() as connection:
            logged = connection.execute(text("SELECT count(*) FROM decisions")).scalar_one()
        print(f"\n{args.existing}, {logged:,} decisions:")
        settle(args.existing)
        time_reads(args.existing, customer_pseudonyms(args.rows), args.repeat)
        return
    for kind in args.databases:
        if not args.skip_reads:
            print(f"\n{kind}, {args.rows:,} decisions:")
            with database(kind) as url:
                customers_ = fill(url, args.rows)
                time_reads(url, customers_, args.repeat)
        if not args.skip_post:
            store_cost(kind, args.store_events, rounds=3)
            post_cost(kind, args.seconds, args.connections)


if __name__ == "__main__":
    main()
