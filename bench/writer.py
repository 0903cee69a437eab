"""The writer's batch in process: what storing one decision costs, by step, at the batch sizes the API sees.

Not a test: it measures and prints. The events are a shuffled sample of the domain's valid points,
decided and made ready exactly as POST /v1/events makes them (`intake.prepare`); each batch is then
stored as a worker's storing process stores it (app/decisions/storing.py: its own engine, the
live-keys check and `store.store` in one write transaction). Reported per decision: the CPU time
and the wall time, each the median of `--repeat`
runs of `--batches` batches, on a fresh database per configuration. With `--profile`, cProfile's
top functions for the first configuration, to see which step the CPU goes to.

    python -m bench.writer [--databases sqlite postgresql] [--sizes 1 16 64] [--batches 40] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time
from collections.abc import Sequence

from app.access.keys import live_keys
from app.config import REPOSITORY
from app.db import Transaction, make_engine, make_sessions
from app.decisions import intake
from app.decisions.store import Submission, store
from app.rules.input_domain import loaded_engine
from app.rules.loader import load_rules
from bench.audit import BENCH_CHAIN_INFO, database
from bench.run import valid_events

PSEUDONYM_KEY = b"bench"


def submissions(count: int) -> list[Submission]:
    """`count` valid events, each with its own event id, made ready to store as the API makes them."""
    rules = load_rules(REPOSITORY / "rules")
    engine = loaded_engine(rules)
    try:
        sample = valid_events(rules, 2000)
        made = []
        for number in range(count):
            body, _ = sample[number % len(sample)]
            body = body.model_copy(update={"event_id": f"bench-{number}"})
            made.append(intake.prepare(body, client="bench", rules=rules, engine=engine, pseudonym_key=PSEUDONYM_KEY))
        return made
    finally:
        engine.close()


def store_batches(write: Transaction, batches: Sequence[Sequence[Submission]]) -> tuple[float, float]:
    """Store each batch in its own write transaction, as the writer does: (CPU s, wall s) in all."""
    cpu, wall = time.thread_time(), time.perf_counter()
    for batch in batches:
        with write() as session:
            live_keys(session, set())
            store(session, batch)
    return time.thread_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[1, 16, 64])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    most = max(args.sizes) * args.batches * (args.repeat + 1)
    made = submissions(most)
    print(f"{len(made)} submissions made ready; per decision, median of {args.repeat} runs:")
    profiled = not args.profile
    for kind in args.databases:
        for size in args.sizes:
            # One engine a configuration, as a worker keeps one: its statements compiled once, in the warm-up.
            with database(kind) as url:
                engine = make_engine(url, pre_ping=False, storing=True)  # as the storing process opens it
                _, write = make_sessions(engine, info=BENCH_CHAIN_INFO)
                batches_of = iter(
                    [made[start : start + size] for start in range(offset, offset + size * args.batches, size)]
                    for offset in range(0, len(made), size * args.batches)
                )
                store_batches(write, next(batches_of))  # warm: caches, statistics, the first pages
                runs = []
                for _ in range(args.repeat):
                    batches = next(batches_of)
                    if not profiled:
                        profiler = cProfile.Profile()
                        profiler.enable()
                    cpu, wall = store_batches(write, batches)
                    if not profiled:
                        profiler.disable()
                        pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
                        profiled = True
                    runs.append((cpu, wall))
                engine.dispose()
                decisions = size * args.batches
                cpu_ms = statistics.median(cpu for cpu, _ in runs) / decisions * 1000
                wall_ms = statistics.median(wall for _, wall in runs) / decisions * 1000
                print(f"{kind:<10} batch of {size:>3}: CPU {cpu_ms:.3f} ms, wall {wall_ms:.3f} ms a decision")


if __name__ == "__main__":
    main()
