"""POST /v1/events beside the stack's own ceiling, over loopback, in one run.

For each database (SQLite, PostgreSQL) and number of workers (1, 2) this serves
`bench.ceiling:app` — the service with one more endpoint that only validates the same
body and inserts one row — on a fresh database, and drives both endpoints with wrk in
turns: ceiling, events, ceiling, events. The ratio is events/s over ceiling/s of the same
configuration; the target is at least 0.6 with p99 under 50 ms at 32 connections.

    python -m bench.http [--seconds 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.config import REPOSITORY

PORT = 8766
BASE = f"http://127.0.0.1:{PORT}"
MEMORY_PORT = 8767  # bench/memory.py's, so that the two can run at once
POSTGRES = "postgresql://postgres@127.0.0.1:5432"
BENCH_DATABASE = "reitti_bench_http"


@dataclass
class Run:
    """One wrk run: requests per second, latency quantiles in ms, non-2xx answers, server CPU per request."""

    endpoint: str
    per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    requests: int
    cpu_ms: float | None = None  # measured by whoever knows the server's pid

    def line(self) -> str:
        errors = f", {self.non_2xx} non-2xx" if self.non_2xx else ""
        latency = f"p50 {self.p50_ms:6.1f} ms   p99 {self.p99_ms:6.1f} ms"
        cpu = "" if self.cpu_ms is None else f"   CPU {self.cpu_ms:.2f} ms a request"
        return f"{self.endpoint:<14} {self.per_second:>8,.0f} /s   {latency}{cpu}{errors}"


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process and its children (uvicorn's workers) so far.

    Unlike requests per second, this hardly moves when something else runs on the machine.
    """
    total = 0.0
    for process in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{process}/stat").read_text().rpartition(")")[2].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(endpoint: str, script: Path, key: str, seconds: int, connections: int, base: str = BASE) -> Run:
    """Drive one endpoint with wrk and read its report."""
    report = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script)]
        + ["-H", f"Authorization: Bearer {key}", base],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    try:
        per_second = float(re.search(r"Requests/sec:\s+([\d.]+)", report).group(1))  # type: ignore[union-attr]
        # At the start of a line: "70.50%" in the thread statistics must not be read as the 50% line.
        p50 = _ms(re.search(r"^\s+50%\s+(\S+)", report, re.MULTILINE).group(1))  # type: ignore[union-attr]
        p99 = _ms(re.search(r"^\s+99%\s+(\S+)", report, re.MULTILINE).group(1))  # type: ignore[union-attr]
    except (AttributeError, KeyError) as error:
        raise RuntimeError(f"could not read wrk's report:\n{report}") from error
    found = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", report)
    requests = int(re.search(r"(\d+) requests in", report).group(1))  # type: ignore[union-attr]
    return Run(endpoint, per_second, p50, p99, int(found.group(1)) if found else 0, requests)


@contextmanager
def fresh_database(kind: str, folder: Path) -> Iterator[str]:
    """The URL of an empty database of `kind`; a PostgreSQL one is dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'bench.db'}"
        return
    admin = [sys.executable, "-c", _ADMIN, POSTGRES + "/postgres", BENCH_DATABASE]
    subprocess.run(admin, check=True)
    try:
        yield f"{POSTGRES}/{BENCH_DATABASE}"
    finally:
        subprocess.run([*admin, "--drop"], check=True)


# Run in a child process so that this one never holds a connection to the bench database.
_ADMIN = """
import sys
import psycopg
url, name = sys.argv[1], sys.argv[2]
with psycopg.connect(url, autocommit=True) as connection:
    connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if "--drop" not in sys.argv:
        connection.execute(f'CREATE DATABASE "{name}"')
"""


@contextmanager
def serving(
    database_url: str, workers: int, app: str = "bench.ceiling:app", port: int = PORT
) -> Iterator[tuple[str, int]]:
    """`app` with `workers` workers on a migrated database: an integration key and the server's pid."""
    env = {
        **os.environ,
        "REITTI_DATABASE_URL": database_url,
        "REITTI_PSEUDONYM_KEY": "bench",
        "REITTI_CHECKPOINT_KEY": "bench",
        "REITTI_CHAIN_KEY": "bench-chain",
        "REITTI_SESSION_SECRET": "bench-session-secret-bench-session-secret",
    }
    reitti = [sys.executable, "-m", "app.cli"]
    subprocess.run([*reitti, "db", "upgrade"], env=env, check=True, capture_output=True, cwd=REPOSITORY)
    created = subprocess.run(
        [*reitti, "keys", "create", "--role", "integration", "--name", "bench"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        cwd=REPOSITORY,
    )
    key = created.stdout.strip().splitlines()[-1]
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--workers", str(workers)]
        + ["--log-level", "warning", "--no-access-log"],
        env=env,
        cwd=REPOSITORY,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            if server.poll() is not None:
                raise RuntimeError(f"the service exited with {server.returncode}: is port {port} taken?")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError("the service did not become ready")
        yield key, server.pid
    finally:
        server.terminate()
        server.wait(timeout=30)


def configuration(kind: str, workers: int, seconds: int, connections: int) -> None:
    """Ceiling and events in turns, twice, on a fresh database; print each run and the ratio."""
    print(f"\n{kind}, {workers} worker{'s' if workers > 1 else ''}, {connections} connections, {seconds} s a run:")
    runs: list[Run] = []
    with (
        tempfile.TemporaryDirectory() as folder,
        fresh_database(kind, Path(folder)) as url,
        serving(url, workers) as (key, pid),
    ):
        for _ in range(2):
            for endpoint, script in (("ceiling", "ceiling_events.lua"), ("/v1/events", "post_events.lua")):
                before = cpu_seconds(pid)
                run = wrk(endpoint, REPOSITORY / "bench" / script, key, seconds, connections)
                run.cpu_ms = (cpu_seconds(pid) - before) * 1000 / max(run.requests, 1)
                runs.append(run)
                print("  " + run.line(), flush=True)
    ceiling = max(run.per_second for run in runs if run.endpoint == "ceiling")
    events = max(run.per_second for run in runs if run.endpoint == "/v1/events")
    worst_p99 = max(run.p99_ms for run in runs if run.endpoint == "/v1/events")
    cpu = min(run.cpu_ms or 0.0 for run in runs if run.endpoint == "/v1/events")
    cpu_ceiling = min(run.cpu_ms or 0.0 for run in runs if run.endpoint == "ceiling")
    print(f"  events/ceiling {events / ceiling:.2f} (best of two each); worst p99 of events {worst_p99:.1f} ms")
    print(f"  server CPU a request, ceiling/events: {cpu_ceiling / cpu:.2f} (least of two each)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk")
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; {time.strftime('%Y-%m-%d %H:%M')}")
    for kind in args.databases:
        for workers in args.workers:
            configuration(kind, workers, args.seconds, args.connections)


if __name__ == "__main__":
    main()
