"""The reports on a year of a million decisions: the dashboard and cost sharing, in process and over HTTP.

    python -m bench.reports                       # 1,000,000 decisions, PostgreSQL then SQLite
    python -m bench.reports --decisions 200000 --kinds sqlite

The reports read the decision counts alone, never the log's rows, so the counts are filled
directly, in bulk: the service's own decisions for 2,000 varied valid events, spread evenly
over 2025 as bench/audit.py spreads its log, counted by Finnish day (one in thirty overridden)
and summed into months as `reitti audit rebuild-counts` sums them. The target (issue 15):
the dashboard of a year, p50 under 200 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from app.access.keys import Principal
from app.config import REPOSITORY
from app.db import make_engine
from app.models import COUNT_GROUP, NO_UNIT, DecisionCount, DecisionMonthCount, Role
from app.reports.cost_sharing import cost_sharing
from app.reports.dashboard import figures
from app.rules.loader import load_rules
from app.schemas import DecisionOut
from app.time import finnish_day
from bench import http
from bench.audit import FIRST_DAY, database, decided_sample

MANAGEMENT = Principal(key_id=0, name="bench-management", role=Role.management, municipality=None)
FIRST, LAST = date(2025, 1, 1), date(2025, 12, 31)
BATCH = 20_000
PASSWORD = "bench password, long enough"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def fill_counts(url: str, decisions: int) -> None:
    """The decision counts of `decisions` decisions over a year: by day in bulk, then months from the days."""
    rules = load_rules(REPOSITORY / "rules")
    sample = decided_sample(rules, 2000)
    rng = random.Random(15)
    step = timedelta(days=360) / decisions
    started = time.perf_counter()
    groups = []
    for event, decided in sample:
        decision = DecisionOut.model_validate(decided)  # bench.audit types it as a dict; decide() makes a DecisionOut
        group = {
            "client": "bench",
            "event_type": event.event_type.code,
            "rule_id": decision.rule.id,
            "ruleset_version": decision.rule.ruleset,
            "handler_unit": decision.handler.unit,
            "provider_unit": decision.provider.unit,
            "customership_unit": decision.customership.unit if decision.customership else NO_UNIT,
            "home_municipality": event.home_municipality,
        }
        groups.append(tuple(group[name] for name in COUNT_GROUP))
    by_day: Counter[tuple[date, tuple[str, ...]]] = Counter()
    overridden: Counter[tuple[date, tuple[str, ...]]] = Counter()
    for seq in range(decisions):
        key = (finnish_day(FIRST_DAY + step * seq), groups[seq % len(groups)])
        by_day[key] += 1
        if rng.random() < 1 / 30:
            overridden[key] += 1
    rows = [
        {
            "day": day,
            **dict(zip(COUNT_GROUP, group, strict=True)),
            "decisions": n,
            "overridden": overridden[(day, group)],
        }
        for (day, group), n in by_day.items()
    ]
    engine = make_engine(url)
    with engine.begin() as connection:
        for start in range(0, len(rows), BATCH):
            connection.execute(insert(DecisionCount), rows[start : start + BATCH])
        if connection.dialect.name == "postgresql":
            month: Any = func.date_trunc("month", DecisionCount.day).cast(DecisionCount.day.type)
        else:
            month = func.date(DecisionCount.day, "start of month")
        columns = [getattr(DecisionCount, name) for name in COUNT_GROUP]
        months = select(
            month, *columns, func.sum(DecisionCount.decisions), func.sum(DecisionCount.overridden)
        ).group_by(month, *columns)
        connection.execute(
            insert(DecisionMonthCount).from_select(["month", *COUNT_GROUP, "decisions", "overridden"], months)
        )
        month_rows = connection.execute(select(func.count()).select_from(DecisionMonthCount)).scalar_one()
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    engine.dispose()
    elapsed = time.perf_counter() - started
    print(f"  {decisions:,} decisions counted into {len(rows):,} day rows and {month_rows:,} month rows", end="")
    print(f" in {elapsed:.1f} s")


def timed(label: str, run: Callable[[], Any], repeat: int) -> None:
    """Run once to warm up, then `repeat` times; print p50, p90 and the slowest in milliseconds."""
    run()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p90 = times[max(0, round(0.9 * len(times)) - 1)]
    print(f"  {label:<52} p50 {statistics.median(times):7.1f} ms   p90 {p90:7.1f} ms   max {times[-1]:7.1f} ms")


def in_process(url: str, repeat: int) -> None:
    """The services the pages call, without HTTP."""
    rules = load_rules(REPOSITORY / "rules")
    engine = make_engine(url)
    now = datetime.now(UTC)

    def report() -> Any:
        with Session(engine) as session:
            return cost_sharing(session, rules, MANAGEMENT, first=FIRST, last=LAST, made_at=now)

    def dashboard() -> Any:
        with Session(engine) as session:
            return figures(session, rules, MANAGEMENT, first=FIRST, last=LAST, made_at=now)

    def cut_months() -> Any:  # days at both ends: read by day, the rest by month
        with Session(engine) as session:
            first, last = date(2025, 1, 15), date(2025, 12, 14)
            return figures(session, rules, MANAGEMENT, first=first, last=last, made_at=now)

    timed("cost sharing, a year (service)", report, repeat)
    timed("dashboard, a year (service)", dashboard, repeat)
    timed("dashboard, 15 Jan - 14 Dec (service)", cut_months, repeat)
    engine.dispose()


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _reitti(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    made = subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        input=stdin,
        check=True,
        capture_output=True,
        text=True,
        cwd=REPOSITORY,
    )
    return made.stdout


def over_http(url: str, repeat: int) -> None:
    """GET /v1/reports/cost-sharing (JSON, XLSX) with a management key, and the dashboard page logged in."""
    port = free_port()  # not bench.http's fixed port: other benchmarks may be serving on it
    with http.serving(url, 1, app="app.main:app", port=port):
        env = {**os.environ, "REITTI_DATABASE_URL": url}
        key = _reitti(env, "keys", "create", "--role", "management", "--name", "bench-management").split()[-1]
        _reitti(env, "users", "create", "--role", "management", "--name", "johto", "--password-stdin", stdin=PASSWORD)
        base = f"http://127.0.0.1:{port}"
        period = {"from": FIRST.isoformat(), "to": LAST.isoformat()}
        with httpx.Client(base_url=base, timeout=60) as client:
            headers = {"Authorization": f"Bearer {key}"}
            url_path = "/v1/reports/cost-sharing"
            timed(
                "GET /v1/reports/cost-sharing, JSON",
                lambda: client.get(url_path, params=period, headers=headers),
                repeat,
            )
            xlsx = {**headers, "Accept": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
            timed(
                "GET /v1/reports/cost-sharing, XLSX", lambda: client.get(url_path, params=period, headers=xlsx), repeat
            )
            cookie = _log_in(client)
            page = {"Cookie": cookie}
            answer = client.get("/ui/reports", params=period, headers=page)
            assert answer.status_code == 200, answer.status_code
            assert "<svg" in answer.text
            timed(
                "GET /ui/reports (dashboard page, SVG), a year",
                lambda: client.get("/ui/reports", params=period, headers=page),
                repeat,
            )


def _log_in(client: httpx.Client) -> str:
    """Log in as the management user; the session cookie (Secure cookies are kept by hand over loopback HTTP)."""
    form = client.get("/ui/login")
    anonymous = form.headers["set-cookie"].split(";")[0]
    token = CSRF.search(form.text)
    assert token is not None
    data = {"csrf_token": token.group(1), "username": "johto", "password": PASSWORD}
    logged = client.post("/ui/login", data=data, headers={"Cookie": anonymous})
    assert logged.status_code == 303, logged.status_code
    return logged.headers["set-cookie"].split(";")[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--kinds", nargs="*", default=["postgresql", "sqlite"], choices=["postgresql", "sqlite"])
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    for kind in args.kinds:
        print(f"\n{kind}, a year of {args.decisions:,} decisions:")
        with database(kind) as url:
            fill_counts(url, args.decisions)
            in_process(url, args.repeat)
            over_http(url, args.repeat)


if __name__ == "__main__":
    main()
