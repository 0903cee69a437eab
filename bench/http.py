"""POST /v1/events beside the stack's own ceilings, over loopback, in one run.

For each database (SQLite, PostgreSQL) and number of workers (1, 2) this serves, on fresh
databases, the service and `bench/ceiling_app.py` — the ceiling issue 17 defines: an async
endpoint that validates the same body, inserts one row (SQLite WAL, synchronous=NORMAL, like the
service's; or PostgreSQL) and answers JSON — with the same number of workers, and drives them with
wrk in turns, at 8, 32 and 128 connections: ceiling, events, ceiling, events. The ratio is
events/s over ceiling/s of the same configuration and connections; the target is at least 0.6,
with p99 under 50 ms at 32 connections. At 32 connections the older ceiling is measured too:
`POST /bench/ceiling` inside the service (a sync endpoint through an ORM session, bench/ceiling.py).

Under each run, where its CPU went: each event loop's and storing process's CPU a request, and
the share of the machine left idle. With two workers the kernel decides how wrk's connections
split between them, and the split decides the rate: a ceiling worker that takes them all leaves a
core idle, a service worker that takes them all stores in batches as large as one worker's.

    python -m bench.http [--seconds 8] [--connections 8 32 128] [--databases sqlite postgresql] [--workers 1 2]
                         [--before CHECKOUT]

`--before` serves an earlier commit's checkout too (`git worktree add /tmp/before <commit>`), with
this environment, and measures it in the same turns: the before and after of a change in one run.
"""

from __future__ import annotations

import argparse
import contextlib
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
from app.web.transport import PROTOCOL

# Ports and database names can be moved, so that two checkouts can run benchmarks on one machine
# without one dropping the other's database.
PORT = int(os.environ.get("REITTI_BENCH_PORT", "8766"))
BASE = f"http://127.0.0.1:{PORT}"
MEMORY_PORT = PORT + 1  # bench/memory.py's, so that the two can run at once
CEILING_PORT = PORT + 2
POSTGRES = "postgresql://postgres@127.0.0.1:5432"
_SUFFIX = os.environ.get("REITTI_BENCH_DATABASE_SUFFIX", "")
BENCH_DATABASE = "reitti_bench_http" + _SUFFIX
CEILING_DATABASE = "reitti_bench_ceiling" + _SUFFIX
CEILING_BASE = f"http://127.0.0.1:{CEILING_PORT}"
BEFORE_PORT = PORT + 4  # an earlier commit's service, with --before (two-instance runs take PORT + 3)
BEFORE_BASE = f"http://127.0.0.1:{BEFORE_PORT}"
BEFORE_DATABASE = "reitti_bench_before" + _SUFFIX


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
    split: str = ""  # the CPU a request of each event loop and storing process, and the machine's idle share

    def line(self) -> str:
        errors = f", {self.non_2xx} non-2xx" if self.non_2xx else ""
        latency = f"p50 {self.p50_ms:6.1f} ms   p99 {self.p99_ms:6.1f} ms"
        cpu = "" if self.cpu_ms is None else f"   CPU {self.cpu_ms:.2f} ms a request"
        split = f"\n{'':<18}{self.split}" if self.split else ""
        return f"{self.endpoint:<14} {self.per_second:>8,.0f} /s   {latency}{cpu}{errors}{split}"


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process and its descendants so far.

    Unlike requests per second, this hardly moves when something else runs on the machine.
    """
    return sum(_process_cpu(process) for process in [pid, *_children(pid)])


def _process_cpu(pid: int) -> float:
    """User and system CPU time of one process so far; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_children(pid: int) -> list[int]:
    """The processes that `pid`'s threads started, not their descendants."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return found


def _children(pid: int) -> list[int]:
    """Every descendant: uvicorn's workers and their storing processes (app/decisions/storing.py)."""
    return [descendant for child in _own_children(pid) for descendant in (child, *_children(child))]


def _working_children(pid: int) -> list[int]:
    """A process's own children but multiprocessing's resource tracker, which does nothing measurable."""
    return [child for child in _own_children(pid) if b"resource_tracker" not in _cmdline(child)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


def _serving_processes(pid: int, workers: int) -> tuple[list[int], list[int]]:
    """A server's event loops (uvicorn's workers; the server itself when it has one) and their storing processes."""
    loops = [pid] if workers == 1 else _working_children(pid)
    return loops, [storing for loop in loops for storing in _working_children(loop)]


def _machine_idle() -> tuple[int, int]:
    """Jiffies idle (iowait included) and in all, of every core, so far."""
    times = [int(field) for field in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return times[3] + times[4], sum(times)


class Split:
    """Where a run's CPU went: each event loop's and storing process's CPU a request, and the machine's idle share.

    Two workers' rate depends on how the kernel spreads the connections between them: one that
    takes them all stores in batches as large as one worker's (issue 17, bench/RESULTS.md).
    """

    def __init__(self, pid: int, workers: int) -> None:
        self._loops, self._storing = _serving_processes(pid, workers)
        self._cpu = {process: _process_cpu(process) for process in [*self._loops, *self._storing]}
        self._idle = _machine_idle()

    def said(self, requests: int) -> str:
        per_request = {
            process: (_process_cpu(process) - cpu) * 1000 / max(requests, 1) for process, cpu in self._cpu.items()
        }
        idle, total = (now - then for now, then in zip(_machine_idle(), self._idle, strict=True))
        loops = "+".join(f"{per_request[process]:.2f}" for process in self._loops)
        storing = "+".join(f"{per_request[process]:.2f}" for process in self._storing)
        return (
            f"loops {loops}"
            + (f", storing {storing}" if storing else "")
            + f" ms; machine idle {idle / max(total, 1):.0%}"
        )


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
def fresh_database(kind: str, folder: Path, name: str = BENCH_DATABASE) -> Iterator[str]:
    """The URL of an empty database of `kind`; a PostgreSQL one is dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / (name + '.db')}"
        return
    admin = [sys.executable, "-c", _ADMIN, POSTGRES + "/postgres", name]
    subprocess.run(admin, check=True)
    try:
        yield f"{POSTGRES}/{name}"
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


def _transport(repository: Path) -> list[str]:
    """uvicorn's `--http` as `reitti serve` gives it (app/web/transport.py), to the service and the
    ceiling alike: without it, two workers answer with Nagle's algorithm on, 43 ms a request to a
    client that waits for each answer. An earlier checkout without the protocol runs as it ran."""
    if not (repository / "app" / "web" / "transport.py").exists():
        return []
    return ["--http", PROTOCOL]


@contextmanager
def serving(
    database_url: str,
    workers: int,
    app: str = "bench.ceiling:app",
    port: int = PORT,
    key_name: str = "bench",
    repository: Path = REPOSITORY,
) -> Iterator[tuple[str, int]]:
    """`app` of `repository` with `workers` workers on a migrated database: an integration key and the server's pid."""
    env = {
        **os.environ,
        "PYTHONPATH": str(repository),
        "REITTI_DATABASE_URL": database_url,
        "REITTI_PSEUDONYM_KEY": "bench",
        "REITTI_CHECKPOINT_KEY": "bench",
        "REITTI_CHAIN_KEY": "bench-chain",
        "REITTI_SESSION_SECRET": "bench-session-secret-bench-session-secret",
    }
    reitti = [sys.executable, "-m", "app.cli"]
    subprocess.run([*reitti, "db", "upgrade"], env=env, check=True, capture_output=True, cwd=repository)
    created = subprocess.run(
        [*reitti, "keys", "create", "--role", "integration", "--name", key_name],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        cwd=repository,
    )
    key = created.stdout.strip().splitlines()[-1]
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--workers", str(workers)]
        + ["--log-level", "warning", "--no-access-log", *_transport(repository)],
        env=env,
        cwd=repository,
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


@contextmanager
def serving_ceiling(database_url: str, folder: Path, workers: int, port: int = CEILING_PORT) -> Iterator[int]:
    """bench/ceiling_app.py with `workers` workers: the server's pid."""
    env = {**os.environ, "CEILING_DB": str(folder / "ceiling.db")}
    if database_url.startswith("postgresql"):
        env["CEILING_DATABASE_URL"] = database_url
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.ceiling_app:app", "--port", str(port), "--workers", str(workers)]
        + ["--log-level", "warning", "--no-access-log", *_transport(REPOSITORY)],
        env=env,
        cwd=REPOSITORY,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            if server.poll() is not None:
                raise RuntimeError(f"the ceiling exited with {server.returncode}: is port {port} taken?")
            try:
                httpx.get(f"http://127.0.0.1:{port}/openapi.json")
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise RuntimeError("the ceiling did not become ready")
        yield server.pid
    finally:
        server.terminate()
        server.wait(timeout=30)


def measured(
    endpoint: str, script: str, key: str, seconds: int, connections: int, pid: int, base: str, workers: int
) -> Run:
    before, split = cpu_seconds(pid), Split(pid, workers)
    run = wrk(endpoint, REPOSITORY / "bench" / script, key, seconds, connections, base)
    run.cpu_ms = (cpu_seconds(pid) - before) * 1000 / max(run.requests, 1)
    run.split = split.said(run.requests)
    print("  " + run.line(), flush=True)
    return run


def configuration(kind: str, workers: int, seconds: int, levels: list[int], before: Path | None = None) -> list[str]:
    """Ceilings and events in turns on fresh databases; print each run, return the summary lines.

    With `before` (a checkout of an earlier commit), that tree's service is served too, on its
    own fresh database, and measured in the same turns: before and after in one run.
    """
    print(f"\n{kind}, {workers} worker{'s' if workers > 1 else ''}, {seconds} s a run:")
    summary = []
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        url = stack.enter_context(fresh_database(kind, folder))
        ceiling_url = stack.enter_context(fresh_database(kind, folder, CEILING_DATABASE))
        key, pid = stack.enter_context(serving(url, workers))
        ceiling_pid = stack.enter_context(serving_ceiling(ceiling_url, folder, workers))
        earlier: tuple[str, int] | None = None
        if before is not None:
            before_url = stack.enter_context(fresh_database(kind, folder, BEFORE_DATABASE))
            served = serving(before_url, workers, "app.main:app", BEFORE_PORT, repository=before)
            earlier = stack.enter_context(served)
        # Not measured: the first seconds of a server start its storing process, fill its caches
        # and open its connections, and their slowest answers would otherwise be the first run's p99.
        warm_up = [(key, CEILING_BASE), (key, BASE), *([(earlier[0], BEFORE_BASE)] if earlier else [])]
        for warm_key, base in warm_up:
            wrk("warm-up", REPOSITORY / "bench" / "post_events.lua", warm_key, 2, 32, base)
        for connections in levels:
            print(f" {connections} connections:")
            runs: list[Run] = []
            for _ in range(2):
                runs.append(
                    measured(
                        "ceiling", "post_events.lua", key, seconds, connections, ceiling_pid, CEILING_BASE, workers
                    )
                )
                runs.append(measured("/v1/events", "post_events.lua", key, seconds, connections, pid, BASE, workers))
                if earlier is not None:
                    before_key, before_pid = earlier
                    runs.append(
                        measured(
                            "before",
                            "post_events.lua",
                            before_key,
                            seconds,
                            connections,
                            before_pid,
                            BEFORE_BASE,
                            workers,
                        )
                    )
            if connections == 32:
                runs.append(
                    measured("old ceiling", "ceiling_events.lua", key, seconds, connections, pid, BASE, workers)
                )
            ceiling = max(run.per_second for run in runs if run.endpoint == "ceiling")
            events = [run for run in runs if run.endpoint == "/v1/events"]
            best = max(run.per_second for run in events)
            old = [run.per_second for run in runs if run.endpoint == "old ceiling"]
            earlier_runs = [run for run in runs if run.endpoint == "before"]
            line = (
                f"{kind:<10} {workers} worker{'s' if workers > 1 else ' '} {connections:>3} conn: "
                f"events/ceiling {best / ceiling:.2f} ({best:,.0f} / {ceiling:,.0f}; best of two each), "
                f"events p50 {min(r.p50_ms for r in events):.1f} ms, p99 {max(r.p99_ms for r in events):.1f} ms"
                + (f"; events/old ceiling {best / old[0]:.2f}" if old else "")
                + (f"; before/ceiling {max(r.per_second for r in earlier_runs) / ceiling:.2f}" if earlier_runs else "")
            )
            print("  " + line)
            summary.append(line)
    return summary


def _wrk_both(bases: list[str], keys: list[str], seconds: int, connections: int) -> float:
    """wrk on every base at once, the connections split between them: the combined rate."""
    runs = [
        subprocess.Popen(
            ["wrk", "-t1", f"-c{connections // len(bases)}", f"-d{seconds}s", "-s"]
            + [str(REPOSITORY / "bench" / "post_events.lua"), "-H", f"Authorization: Bearer {key}", base],
            stdout=subprocess.PIPE,
            text=True,
        )
        for base, key in zip(bases, keys, strict=True)
    ]
    total = 0.0
    for run in runs:
        report, _ = run.communicate()
        total += float(re.search(r"Requests/sec:\s+([\d.]+)", report).group(1))  # type: ignore[union-attr]
    return total


def two_instances(seconds: int, connections: int) -> str:
    """Two `reitti serve` (one worker each) on one PostgreSQL: one alone, then both at once, in turns;
    then the chain is verified. Duplicates across the two are a test (tests/test_workers.py)."""
    print(f"\ntwo instances on one PostgreSQL, {connections} connections in all, {seconds} s a run:")
    second = PORT + 3
    with (
        tempfile.TemporaryDirectory() as folder,
        fresh_database("postgresql", Path(folder)) as url,
        serving(url, 1, app="app.main:app") as (key, _),
        serving(url, 1, app="app.main:app", port=second, key_name="bench-2") as (key_2, _),
    ):
        alone, both = [], []
        for _ in range(2):
            alone.append(_wrk_both([BASE], [key], seconds, connections))
            both.append(_wrk_both([BASE, f"http://127.0.0.1:{second}"], [key, key_2], seconds, connections))
            print(f"  one instance {alone[-1]:,.0f} /s   two instances together {both[-1]:,.0f} /s", flush=True)
        env = {**os.environ, "REITTI_DATABASE_URL": url, "REITTI_CHAIN_KEY": "bench-chain"}
        env["REITTI_CHECKPOINT_KEY"] = "bench"
        verified = subprocess.run(
            [sys.executable, "-m", "app.cli", "audit", "verify"],
            env=env,
            capture_output=True,
            text=True,
            cwd=REPOSITORY,
        )
    chain = verified.stdout.strip().splitlines()[0] if verified.stdout.strip() else verified.stderr.strip()
    line = (
        f"two instances: {max(both):,.0f} /s together against {max(alone):,.0f} /s alone "
        f"({max(both) / max(alone):.2f}×); chain: {chain} (exit {verified.returncode})"
    )
    print("  " + line)
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", nargs="+", type=int, default=[8, 32, 128])
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--two-instances", action="store_true", help="only the two-instance run on PostgreSQL")
    parser.add_argument("--before", type=Path, help="a checkout of an earlier commit, measured in the same turns")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk")
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    if args.two_instances:
        print(two_instances(args.seconds, max(args.connections)))
        return
    summary = []
    for kind in args.databases:
        for workers in args.workers:
            summary += configuration(kind, workers, args.seconds, args.connections, args.before)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
