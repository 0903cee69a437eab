"""Audit benchmarks: walking the chain, appending with four workers, filtered pages and stats of a large log.

Not a test: it measures and prints. Large logs are written straight into a new database:
decisions made by the service's own decide() for a sample of valid events, varied in id,
customer and time (spread over 2025, in sequence order), and chained by app.audit exactly
as the service chains them; then counted into the decision counts by the SQL of
`reitti audit rebuild-counts` (counts.rebuild_counts), which gives the counts the service
would have kept while writing them (tests/test_stats.py holds it to that). Stats are timed
from the counts, as the service answers them, and by the scan of the log they replace.
Appending is measured on PostgreSQL over HTTP, with `reitti serve --workers 4` under wrk,
and with four processes calling the service's submit() directly (no HTTP); after each, the
chain is walked to show it did not fork.

    python -m bench.audit [--verify-rows 100000] [--query-rows 1000000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.orm import Session

from app.access.identity import pseudonymise
from app.access.keys import Principal
from app.audit import chain, verification
from app.audit.keys import ChainKeys, session_info
from app.config import REPOSITORY
from app.db import make_engine, make_sessions, refresh_sqlite_statistics
from app.decisions import counts, intake, queries, stats, store
from app.models import ChainLink, Decision, RecordKind, Role
from app.rules.engine import RuleEngine
from app.rules.events import ValidEvent
from app.rules.loader import load_rules
from app.rules.model import Rules
from app.rules.routing import decide, new_decision_id
from app.schemas import DecisionFilters, DecisionOut, DecisionQuery
from app.time import FINNISH_TIME
from bench.http import wrk
from bench.run import serving, valid_events

# The chain key the benchmarks sign links with (bench/http.py serves with the same one).
BENCH_CHAIN_KEYS = ChainKeys.of(b"bench-chain")
BENCH_CHAIN_INFO = session_info(BENCH_CHAIN_KEYS)

POSTGRES_ADMIN_URL = os.environ.get(
    "REITTI_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BATCH = 5000
FIRST_DAY = datetime(2025, 1, 5, tzinfo=UTC)
AUDITOR = Principal(key_id=0, name="bench-auditor", role=Role.auditor, municipality=None)


@contextmanager
def database(kind: str) -> Iterator[str]:
    """A new database of `kind`, built by `reitti db upgrade`; removed afterwards."""
    with tempfile.TemporaryDirectory() as folder:
        if kind == "sqlite":
            url = f"sqlite:///{Path(folder) / 'bench.db'}"
        else:
            name = f"reitti_bench_{secrets.token_hex(4)}"
            admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            url = admin.url.set(database=name).render_as_string(hide_password=False)
        try:
            env = {**os.environ, "REITTI_DATABASE_URL": url}
            upgrade = [sys.executable, "-m", "app.cli", "db", "upgrade"]
            subprocess.run(upgrade, env=env, check=True, capture_output=True, cwd=REPOSITORY)
            yield url
        finally:
            if kind != "sqlite":
                with admin.connect() as connection:
                    connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()


def decided_sample(rules: Rules, count: int) -> list[tuple[ValidEvent, DecisionOut]]:
    """Valid events with the decisions the service makes for them."""
    engine = RuleEngine()
    for ruleset in rules.rulesets:
        engine.load(ruleset)
    try:
        return [
            (event, decide(event, engine=engine, registry=rules.registry)) for _, event in valid_events(rules, count)
        ]
    finally:
        engine.close()


def fill(url: str, rows: int, sample: list[tuple[ValidEvent, DecisionOut]], customers: list[str]) -> None:
    """Write `rows` decisions and their links in bulk, as the service would have chained them."""
    engine = make_engine(url)
    rng = random.Random(7)
    step = timedelta(days=360) / rows
    seq, prev_hash = 0, chain.GENESIS
    started = time.perf_counter()
    while seq < rows:
        batch_decisions, batch_links = [], []
        for _ in range(min(BATCH, rows - seq)):
            event, decision = sample[seq % len(sample)]
            decided = FIRST_DAY + step * seq
            occurred = decided - timedelta(minutes=rng.randrange(1, 3 * 24 * 60))
            event = replace(
                event, event_id=f"bench-{seq}", customer_pseudonym=rng.choice(customers), occurred_at=occurred
            )
            decision = decision.model_copy(
                update={
                    "decision_id": new_decision_id(),
                    "event_id": event.event_id,
                    "occurred_at": occurred.isoformat(),
                    "decided_at": decided.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                }
            )
            fingerprint = hashlib.sha256(event.event_id.encode()).hexdigest()
            values = store.decision_values(client="bench", event=event, fingerprint=fingerprint, decision=decision)
            seq += 1
            values["seq"] = seq  # the link vouches for it
            link = chain.new_link(BENCH_CHAIN_KEYS, seq, prev_hash, RecordKind.decision, values)
            prev_hash = link["hash"]
            batch_decisions.append(values)
            batch_links.append(link)
        with engine.begin() as connection:
            connection.execute(insert(Decision), batch_decisions)
            connection.execute(insert(ChainLink), batch_links)
    print(f"  wrote {rows:,} decisions and links in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    _, write = make_sessions(engine, info=BENCH_CHAIN_INFO)
    with write() as session:
        groups, _ = counts.rebuild_counts(session)
    elapsed = time.perf_counter() - started
    print(f"  counted them into {groups:,} groups of decision counts (rebuild) in {elapsed:.1f} s")
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    engine.dispose()


def time_verify(url: str, label: str) -> None:
    """Walk the whole chain once and say how long it took."""
    engine = make_engine(url)
    read, _ = make_sessions(engine, info=BENCH_CHAIN_INFO)
    with read() as session:
        started = time.perf_counter()
        result = verification.verify(session)
        elapsed = time.perf_counter() - started
    engine.dispose()
    print(f"  verify, {label}: {elapsed:.2f} s, {result.links / elapsed:,.0f} links/s; {result.summary()[:60]}…")


def _timed(session: Session, run: Callable[[], Any], repeat: int = 7) -> tuple[float, float, Any]:
    """(first run, median of the others) in milliseconds, and the last answer."""
    times = []
    answer = None
    for _ in range(repeat):
        started = time.perf_counter()
        answer = run()
        times.append((time.perf_counter() - started) * 1000)
        session.rollback()  # a new snapshot each time, as a new request would have
    return times[0], statistics.median(times[1:]), answer


def time_queries(url: str) -> None:
    """Filtered first pages (50 rows), a next page, a customer's decisions, stats and a CSV export."""
    engine = make_engine(url)
    started = time.perf_counter()
    if refresh_sqlite_statistics(engine):  # as the service does when it starts
        print(f"  SQLite statistics refreshed (ANALYZE) in {time.perf_counter() - started:.1f} s")
    read, _ = make_sessions(engine, info=BENCH_CHAIN_INFO)
    q1 = {
        "decided_after": datetime(2025, 1, 1, tzinfo=FINNISH_TIME),
        "decided_before": datetime(2025, 4, 1, tzinfo=FINNISH_TIME),
    }
    q4 = {
        "decided_after": datetime(2025, 10, 1, tzinfo=FINNISH_TIME),
        "decided_before": datetime(2026, 1, 1, tzinfo=FINNISH_TIME),
    }
    kempele = Principal(key_id=0, name="bench-coach", role=Role.coach, municipality="244")
    ii_remote = {"rule_id": "information_advice.remote", "municipality": "139"}
    ii = Principal(key_id=0, name="bench-coach", role=Role.coach, municipality="139")
    with read() as session:
        customer = session.scalar(select(Decision.customer_pseudonym).order_by(Decision.seq).limit(1))
        _, cursor = queries.list_decisions(session, AUDITOR, DecisionQuery(customership="central-oeo", **q1))
        pages: list[tuple[str, Principal, DecisionQuery]] = [
            ("central OEO kept the customer, Q4 (newest)", AUDITOR, DecisionQuery(customership="central-oeo", **q4)),
            ("central OEO kept the customer, Q1 (oldest)", AUDITOR, DecisionQuery(customership="central-oeo", **q1)),
            (
                "  the same, next page by cursor",
                AUDITOR,
                DecisionQuery(customership="central-oeo", cursor=cursor, **q1),
            ),
            ("coach of Kempele (244), no filter", kempele, DecisionQuery()),
            ("coach of Ii (139), event type oeo.start", ii, DecisionQuery(event_type="oeo.start")),
            ("one customer (pseudonym)", AUDITOR, DecisionQuery(customer_pseudonym=customer)),
            ("rule oeo.start in Ii, Q1", AUDITOR, DecisionQuery(rule_id="oeo.start", municipality="139", **q1)),
        ]
        for label, principal, query in pages:
            first, median, (items, _) = _timed(
                session, lambda p=principal, q=query: queries.list_decisions(session, p, q)
            )  # type: ignore[misc]
            print(f"  {label:<48} first {first:7.1f} ms, median {median:7.1f} ms, {len(items)} rows")
        year = DecisionFilters(decided_after=q1["decided_after"], decided_before=q4["decided_before"])
        # No whole month: the worst case, every day read from the counts by day.
        by_days = DecisionFilters(
            decided_after=datetime(2025, 10, 2, tzinfo=FINNISH_TIME),
            decided_before=datetime(2025, 11, 30, tzinfo=FINNISH_TIME),
        )
        for label, principal, filters in [
            ("stats of Q4 (auditor)", AUDITOR, DecisionFilters(**q4)),
            ("stats of Q4, coach of Kempele (244)", kempele, DecisionFilters(**q4)),
            ("stats of 2025 (auditor)", AUDITOR, year),
            ("stats of 2025, coach of Kempele (244)", kempele, year),
            ("stats of 2025, remote advice in Ii (auditor)", AUDITOR, year.model_copy(update=ii_remote)),
            ("stats of 2 Oct–30 Nov, 59 days by day (auditor)", AUDITOR, by_days),
        ]:
            time_stats(session, label, principal, filters)
        query = DecisionQuery(customership="central-oeo", **q4)
        start, count = queries.export_start(session, AUDITOR, query)
    started = time.perf_counter()
    size = sum(len(chunk) for chunk in queries.export_csv(read, AUDITOR, query, start=start))
    elapsed = time.perf_counter() - started
    rate = f"{count / elapsed:,.0f} rows/s"
    print(f"  CSV export, central OEO in Q4: {count:,} rows, {size / 1e6:.1f} MB in {elapsed:.1f} s ({rate})")
    engine.dispose()


def time_stats(session: Session, label: str, principal: Principal, filters: DecisionFilters) -> None:
    """Stats from the decision counts, as the service answers these, then by a scan of the log, and the ratio."""
    first, median, counted = _timed(session, lambda: stats.stats_from_counts(session, principal, filters))
    if counted is None:
        raise SystemExit(f"{label}: the decision counts cannot answer this")
    print(f"  {label:<48} first {first:7.1f} ms, median {median:7.1f} ms, {counted.total:,} decisions")
    first, scan, scanned = _timed(session, lambda: stats.stats_by_scan(session, principal, filters), 3)
    same = "the same answer" if scanned == counted else "A DIFFERENT ANSWER"
    label = "  the same by scan of the log"
    print(f"  {label:<48} first {first:7.1f} ms, median {scan:7.1f} ms, {same}, ×{scan / median:,.0f}")


def links_and_verdict(url: str) -> tuple[int, str]:
    engine = make_engine(url)
    read, _ = make_sessions(engine, info=BENCH_CHAIN_INFO)
    with read() as session:
        decisions_count = session.scalar(select(func.count()).select_from(Decision)) or 0
        result = verification.verify(session)
    engine.dispose()
    verdict = "intact" if result.intact else "NOT intact"
    return (
        result.links,
        f"{decisions_count:,} decisions, {result.links:,} links, chain {verdict} up to {result.intact_up_to:,}",
    )


def append_over_http(url: str, seconds: float, connections: int, workers: int) -> None:
    """`reitti serve --workers N` on PostgreSQL under wrk; then the chain is walked."""
    if shutil.which("wrk") is None:
        print("  wrk not found (apt-get install wrk): skipped")
        return
    with serving(url, workers=workers) as (base, key):
        run = wrk("/v1/events", REPOSITORY / "bench" / "post_events.lua", key, int(seconds), connections, base=base)
    links, verdict = links_and_verdict(url)
    print(f"  wrk, {connections} connections, {seconds:.0f} s: {links / seconds:,.0f} appends/s; {verdict}")
    print("     ", run.line())


def _submit_for(url: str, start: Any, seconds: float, worker: int) -> int:
    """One worker process: decide and store new events through submit() until the time is up."""
    rules = load_rules(REPOSITORY / "rules")
    engine = RuleEngine()
    for ruleset in rules.rulesets:
        engine.load(ruleset)
    database_engine = make_engine(url)
    _, write = make_sessions(database_engine, info=BENCH_CHAIN_INFO)
    bodies = [body for body, _ in valid_events(rules, 500)]
    start.wait()  # every process ready: they run over the same seconds
    deadline, count = time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        body = bodies[count % len(bodies)].model_copy(update={"event_id": f"direct-{worker}-{count}"})
        submission = intake.prepare(body, client="bench", rules=rules, engine=engine, pseudonym_key=b"bench")
        with write() as session:
            store.submit(session, submission)
        count += 1
    engine.close()
    database_engine.dispose()
    return count


def append_direct(url: str, seconds: float, workers: int, pg_options: str = "") -> None:
    """N processes calling submit() on one PostgreSQL database at once; then the chain is walked.

    `pg_options` (libpq's PGOPTIONS) lets the contrast run without waiting for the disk.
    """
    os.environ["PGOPTIONS"] = pg_options  # spawned processes start with this environment
    spawn = get_context("spawn")  # not fork: the parent holds a rules engine and connections
    with spawn.Manager() as manager, ProcessPoolExecutor(workers, mp_context=spawn) as pool:
        start = manager.Barrier(workers)
        per_process = list(
            pool.map(_submit_for, [url] * workers, [start] * workers, [seconds] * workers, range(workers))
        )
    del os.environ["PGOPTIONS"]
    links, verdict = links_and_verdict(url)
    label = f"{workers} processes calling submit(){', ' + pg_options if pg_options else ''}, {seconds:.0f} s"
    print(f"  {label}: {links / seconds:,.0f} appends/s (per process {per_process}); {verdict}")


def section(title: str) -> None:
    """A heading with the time it starts: on a shared machine, so that each figure can be matched to the load."""
    print(f"[{time.strftime('%H:%M:%S')}] {title}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verify-rows", type=int, default=100_000)
    parser.add_argument("--query-rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--skip", nargs="*", default=[], choices=["verify", "append", "query"])
    args = parser.parse_args()
    rules = load_rules(REPOSITORY / "rules")
    sample = decided_sample(rules, 2000)
    customers = [pseudonymise(b"bench", f"customer-{n}") for n in range(100_000)]
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; {len(sample)} distinct decisions varied")
    if "verify" not in args.skip:
        for kind in ("sqlite", "postgresql"):
            section(f"chain verify, {args.verify_rows:,} decisions, {kind}:")
            with database(kind) as url:
                fill(url, args.verify_rows, sample, customers)
                time_verify(url, f"{args.verify_rows:,} links")
    if "append" not in args.skip:
        section(f"append throughput, PostgreSQL, {args.workers} workers:")
        with database("postgresql") as url:
            append_over_http(url, args.seconds, args.connections, args.workers)
        section("the same through submit(), no HTTP:")
        with database("postgresql") as url:
            append_direct(url, args.seconds, args.workers)
        # Not for production: a crash could lose commits the clients were told about.
        section("the same without waiting for the disk:")
        with database("postgresql") as url:
            append_direct(url, args.seconds, args.workers, "-c synchronous_commit=off")
    if "query" not in args.skip:
        for kind in ("postgresql", "sqlite"):
            section(f"filtered pages, {args.query_rows:,} decisions, {kind}:")
            with database(kind) as url:
                fill(url, args.query_rows, sample, customers)
                time_queries(url)
                section(f"chain verify, {args.query_rows:,} decisions, {kind}:")
                time_verify(url, f"{args.query_rows:,} links")
    section("done")


if __name__ == "__main__":
    main()
