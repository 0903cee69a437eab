"""Replay throughput: log N decisions (default 100,000) in a fresh SQLite file, then replay them.

`python -m bench.replay [--decisions N]`. The decisions are made by the real decision path
(validation, engine, outcome) from valid points of the input domain and stored in batches;
then `impact` replays every one under the candidate (here the same version, so that the
integrity check runs too) and the rate is printed. Not a test: it measures and prints.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from app.audit.keys import ChainKeys, session_info
from app.db import make_engine, make_sessions
from app.decisions.store import decision_values
from app.models import Decision
from app.rules.engine import RuleEngine
from app.rules.loader import load_rules
from app.rules.replay import impact
from app.rules.routing import decide
from bench.run import valid_events
from tests.conftest import migrate, rules_with_version

# The chain key the benchmarks sign links with (bench/http.py serves with the same one).
BENCH_CHAIN_INFO = session_info(ChainKeys.of(b"bench-chain"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--decisions", type=int, default=100_000)
    args = parser.parse_args()
    # The shipped rules plus the test-only 2026-01-01, so that a real candidate can be replayed too.
    rules = load_rules(rules_with_version(Path(tempfile.mkdtemp()) / "rules", "2026-01-01"))
    engine = RuleEngine()
    for ruleset in rules.rulesets:
        engine.load(ruleset)
    sample = valid_events(rules, 40_000)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'replay.db'}"
        migrate(url)
        _, write = make_sessions(make_engine(url), info=BENCH_CHAIN_INFO)
        started = time.perf_counter()
        for start in range(0, args.decisions, 5000):
            with write() as session:
                for number in range(start, min(start + 5000, args.decisions)):
                    _, event = sample[number % len(sample)]
                    decision = decide(event, engine=engine, registry=rules.registry)
                    values = decision_values(client="bench", event=event, fingerprint="0" * 64, decision=decision)
                    session.add(Decision(**{**values, "event_id": f"e{number}", "decided_at": event.occurred_at}))
        print(f"logged {args.decisions:,} decisions in {time.perf_counter() - started:.1f} s")
        read, _ = make_sessions(make_engine(url), info=BENCH_CHAIN_INFO)
        for candidate, how in ((rules.rulesets[0], "own version: decided once"), (rules.rulesets[1], "decided twice")):
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            with read() as session:
                report = impact(session, rules, engine, candidate)
            rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            print(
                f"replay under {candidate.version} ({how}): {report.decisions:,} in {report.seconds:.1f} s, "
                f"{report.decisions / report.seconds:,.0f}/s; {report.changed} changed, "
                f"{len(report.integrity_findings)} integrity findings; peak RSS {rss_before // 1024} → "
                f"{rss_after // 1024} MB"
            )
        print(f"{os.cpu_count()} cores")


if __name__ == "__main__":
    main()
