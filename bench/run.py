"""First benchmark: decisions per second in process, and of POST /v1/events over loopback.

Not a test: it measures and prints. In process it times, on the same mix of valid
events, (a) the engine alone (durable-rules, as the service calls it), (b) the reference
reading of the same YAML, and (c) the whole decision path (validation, engine, outcome).
Over HTTP it serves the service on a fresh SQLite file and posts new events from
several Python client threads; wrk, beside the stack's ceiling, is bench/http.py.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from app.config import REPOSITORY
from app.errors import EventInvalid
from app.rules.engine import RuleEngine
from app.rules.events import ValidEvent, read_event
from app.rules.input_domain import points
from app.rules.loader import load_rules
from app.rules.model import Rules
from app.rules.routing import decide
from app.schemas import EventIn
from bench import http

PORT = 8765


def valid_events(rules: Rules, count: int) -> list[tuple[EventIn, ValidEvent]]:
    """A shuffled sample of the valid points of the domain."""
    ruleset = rules.rulesets[0]
    found = []
    for body in points(rules, ruleset):
        try:
            found.append((body, read_event(body, rules, pseudonym_key=b"bench")))
        except EventInvalid:
            continue
    random.Random(1).shuffle(found)
    return found[:count]


def rate(label: str, count: int, seconds: float) -> float:
    per_second = count / seconds
    print(f"{label:<42} {per_second:>10,.0f} /s   ({count} in {seconds:.2f} s)")
    return per_second


def in_process(rules: Rules, count: int) -> None:
    sample = valid_events(rules, count)
    ruleset = rules.rulesets[0]
    engine = RuleEngine()
    engine.load(ruleset)
    try:
        started = time.perf_counter()
        for _, event in sample:
            engine.matching_rules(ruleset, event.facts)
        durable = rate("engine (durable-rules), one thread", len(sample), time.perf_counter() - started)

        started = time.perf_counter()
        for _, event in sample:
            [rule.id for rule in ruleset.rules if rule.when.holds(event.facts)]
        reference = rate("reference reading of the YAML", len(sample), time.perf_counter() - started)

        started = time.perf_counter()
        for body, _ in sample:
            event = read_event(body, rules, pseudonym_key=b"bench")
            decide(event, engine=engine, registry=rules.registry)
        whole = rate("whole decision (validate, engine, outcome)", len(sample), time.perf_counter() - started)
        print(f"ratios: reference/engine {reference / durable:.2f}, whole/engine {whole / durable:.2f}")
    finally:
        engine.close()


@contextmanager
def serving(database_url: str | None = None, workers: int = 1) -> Iterator[tuple[str, str]]:
    """The service on an empty database (a fresh SQLite file unless given), with an integration key.

    Yields (base URL, key).
    """
    with tempfile.TemporaryDirectory() as folder:
        url = database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        with http.serving(url, workers, app="app.main:app", port=PORT) as (key, _):
            yield f"http://127.0.0.1:{PORT}", key


def over_http(rules: Rules, seconds: float, clients: int) -> None:
    """New events from Python client threads (they share the two cores with the server)."""
    sample = [body.model_dump(mode="json") for body, _ in valid_events(rules, 2000)]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    with serving() as (base, key):
        deadline = time.perf_counter() + seconds

        def client(number: int) -> None:
            sent = 0
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
                while time.perf_counter() < deadline:
                    body: dict[str, Any] = dict(sample[(number * 7919 + sent) % len(sample)])
                    body["event_id"] = f"bench-{number}-{sent}"
                    started = time.perf_counter()
                    status = http.post("/v1/events", json=body).status_code
                    elapsed = time.perf_counter() - started
                    sent += 1
                    with lock:
                        latencies.append(elapsed)
                        statuses[status] = statuses.get(status, 0) + 1

        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        total = time.perf_counter() - started
    rate(f"POST /v1/events, SQLite, {clients} Python clients", len(latencies), total)
    quantiles = statistics.quantiles(latencies, n=100)
    print(f"latency p50 {quantiles[49] * 1000:.1f} ms, p99 {quantiles[98] * 1000:.1f} ms; statuses {statuses}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    rules = load_rules(REPOSITORY / "rules")
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    in_process(rules, args.events)
    over_http(rules, args.seconds, args.clients)


if __name__ == "__main__":
    main()
