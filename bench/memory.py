"""Resident memory of a worker over 1,000,000 decisions posted over HTTP.

Serves the service (one worker, a fresh SQLite file) and posts new events with wrk in
rounds until a million decisions are stored, reading the worker's resident set size
(VmRSS) after each round. The events are drawn from every valid situation of the domain
(about 39,000: the engine's remembered answers reach their full size), each with its own
event id and one of 100,000 customers. The target: flat within ±10 % from the first
100,000 decisions to the millionth.

    python -m bench.memory [--decisions 1000000] [--round-seconds 30]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
import time
from pathlib import Path

from app.config import REPOSITORY
from app.rules.loader import load_rules
from bench.http import MEMORY_PORT, serving, wrk
from bench.run import valid_events

BASE = f"http://127.0.0.1:{MEMORY_PORT}"
# wrk's Lua: each thread walks the bodies from its own offset; %s is the event id.
LUA = """
local bodies = {%s}
local counter = 0
local prefix = ""
function setup(thread) thread:set("prefix", "mem" .. tostring(thread):sub(-6) .. os.time()) end
function init(args) wrk.headers["Content-Type"] = "application/json" end
function request()
  counter = counter + 1
  local body = string.format(bodies[(counter %% #bodies) + 1], prefix .. "-" .. counter)
  return wrk.format("POST", "/v1/events", nil, body)
end
"""


def lua_script(folder: Path) -> Path:
    """A wrk script over every valid situation, with 100,000 customers."""
    rules = load_rules(REPOSITORY / "rules")
    customers = random.Random(2)
    bodies = []
    for body, _ in valid_events(rules, 1_000_000):
        document = body.model_dump(mode="json", exclude_none=True)
        document["event_id"] = "EVENT_ID"
        document["customer"]["id"] = f"bench-customer-{customers.randrange(100_000)}"
        text = json.dumps(document, separators=(",", ":")).replace("%", "%%").replace("EVENT_ID", "%s")
        bodies.append("[[" + text + "]]")
    script = folder / "memory.lua"
    script.write_text(LUA % ",\n".join(bodies))
    print(f"{len(bodies):,} distinct valid situations in the mix")
    return script


def rss_mb(pid: int) -> float:
    """The resident set size of a process now, in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--round-seconds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    print(f"started {time.strftime('%Y-%m-%d %H:%M')}, Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as folder:
        script = lua_script(Path(folder))
        url = f"sqlite:///{Path(folder) / 'memory.db'}"
        with serving(url, workers=1, app="app.main:app", port=MEMORY_PORT) as (key, pid):
            stored = 0
            samples: list[tuple[int, float]] = []
            started = time.perf_counter()
            while stored < args.decisions:
                report = wrk("/v1/events", script, key, args.round_seconds, args.connections, base=BASE)
                created = report.requests - report.non_2xx
                stored += created
                samples.append((stored, rss_mb(pid)))
                print(
                    f"  {stored:>9,} decisions   RSS {samples[-1][1]:7.1f} MB   {report.per_second:,.0f}/s", flush=True
                )
            elapsed = time.perf_counter() - started
    warm = next(rss for count, rss in samples if count >= min(100_000, args.decisions))
    peak = max(rss for count, rss in samples if count >= min(100_000, args.decisions))
    print(f"{stored:,} decisions in {elapsed / 60:.1f} min")
    print(f"RSS at 100,000: {warm:.1f} MB; at the end: {samples[-1][1]:.1f} MB; highest after 100,000: {peak:.1f} MB")
    print(f"end/100,000 {samples[-1][1] / warm:.3f}; highest/100,000 {peak / warm:.3f}")


if __name__ == "__main__":
    main()
