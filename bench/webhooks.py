"""Webhook delivery beside POST /v1/events, in one run: what delivery costs the POST path, deliveries per
second to a local receiver, and how long a backlog takes to drain.

Serves `bench.ceiling:app` (the service plus a minimal endpoint, see bench/http.py) on a fresh
database with loopback allowed as a webhook host, and a receiver in this process that answers
204 at once. In turns, with wrk: the ceiling; POST /v1/events with no subscription; the same
with one subscription, delivery running beside it; the ceiling again. Then a backlog: the
subscription disabled, N messages written to the outbox, the subscription enabled, and the time
until the outbox is empty.

    python -m bench.webhooks [--database sqlite|postgresql] [--seconds 10] [--backlog 100000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, insert, select

from app.config import REPOSITORY
from app.db import make_engine
from app.models import DeliveryState, WebhookDelivery
from bench.http import _ADMIN, POSTGRES, Run, cpu_seconds, serving, wrk

# Not bench/http.py's port nor its database: the benchmarks may run side by side.
PORT = 8769
BASE = f"http://127.0.0.1:{PORT}"
BENCH_DATABASE = "reitti_bench_webhooks"


@contextmanager
def fresh_database(kind: str, folder: Path) -> Iterator[str]:
    """The URL of an empty database of `kind` of this benchmark's own; a PostgreSQL one is dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'bench.db'}"
        return
    admin = [sys.executable, "-c", _ADMIN, POSTGRES + "/postgres", BENCH_DATABASE]
    subprocess.run(admin, check=True)
    try:
        yield f"{POSTGRES}/{BENCH_DATABASE}"
    finally:
        subprocess.run([*admin, "--drop"], check=True)


class Receiver:
    """Counts what it is sent and answers 204; HTTP/1.1, so the sender keeps its connections."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    receiver.count += 1
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def pending(database_url: str) -> int:
    engine = make_engine(database_url)
    with engine.connect() as connection:
        query = select(func.count()).where(WebhookDelivery.state == DeliveryState.pending.value)
        count = int(connection.execute(query).scalar_one())
    engine.dispose()
    return count


def fill_backlog(database_url: str, subscription_id: int, count: int) -> None:
    """Write `count` pending messages to the outbox, as announcing that many decisions would."""
    engine = make_engine(database_url)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        for start in range(0, count, 5000):
            rows = []
            for _ in range(start, min(start + 5000, count)):
                record = str(uuid.uuid4())
                payload = {
                    "type": "decision.created",
                    "timestamp": now.isoformat(),
                    "data": {"kind": "decision", "decision_id": record, "url": f"/v1/decisions/{record}"},
                }
                rows.append(
                    {
                        "message_id": f"msg_{uuid.uuid4().hex}",
                        "subscription_id": subscription_id,
                        "kind": "decision",
                        "record_id": record,
                        "payload": payload,
                        "state": "pending",
                        "attempts": 0,
                        "created_at": now,
                        "due_at": now,
                        "finished_at": None,
                    }
                )
            connection.execute(insert(WebhookDelivery), rows)
    engine.dispose()


def admin_key(database_url: str) -> str:
    env = {**os.environ, "REITTI_DATABASE_URL": database_url}
    made = subprocess.run(
        [sys.executable, "-m", "app.cli", "keys", "create", "--role", "admin", "--name", "bench-admin"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        cwd=REPOSITORY,
    )
    return made.stdout.strip().splitlines()[-1]


def timed_run(endpoint: str, script: str, key: str, seconds: int, connections: int, pid: int) -> Run:
    before = cpu_seconds(pid)
    run = wrk(endpoint, REPOSITORY / "bench" / script, key, seconds, connections, base=BASE)
    run.cpu_ms = (cpu_seconds(pid) - before) * 1000 / max(run.requests, 1)
    print("  " + run.line(), flush=True)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--backlog", type=int, default=100_000)
    args = parser.parse_args()
    os.environ.update(REITTI_WEBHOOK_ALLOW_HOSTS="127.0.0.1", REITTI_WEBHOOK_POLL_SECONDS="0.1")
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"{args.database}, 1 worker, {args.connections} connections, {args.seconds} s a run:")
    receiver = Receiver()
    with (
        tempfile.TemporaryDirectory() as folder,
        fresh_database(args.database, Path(folder)) as url,
        serving(url, 1, port=PORT) as (key, pid),
    ):
        admin = {"Authorization": f"Bearer {admin_key(url)}"}
        wrk_args = (key, args.seconds, args.connections, pid)
        ceiling = [timed_run("ceiling", "ceiling_events.lua", *wrk_args)]
        without = timed_run("/v1/events", "post_events.lua", *wrk_args)
        made = httpx.post(f"{BASE}/v1/webhooks", json={"url": receiver.url}, headers=admin, timeout=30)
        made.raise_for_status()
        webhook_id = made.json()["id"]
        started, before = time.monotonic(), receiver.count
        beside = timed_run("/v1/events +hook", "post_events.lua", *wrk_args)
        during = (receiver.count - before) / (time.monotonic() - started)
        while pending(url):  # what the run announced, delivered before the next measurement
            time.sleep(0.2)
        ceiling.append(timed_run("ceiling", "ceiling_events.lua", *wrk_args))
        best_ceiling = max(run.per_second for run in ceiling)
        print(f"  deliveries beside the POSTs: {during:,.0f} /s; announced {beside.requests:,}")
        print(f"  events/ceiling without a subscription {without.per_second / best_ceiling:.2f}, ", end="")
        print(f"with one and delivery running {beside.per_second / best_ceiling:.2f}")
        print(f"  POST with delivery / without: {beside.per_second / without.per_second:.2f} (throughput), ", end="")
        print(f"{(without.cpu_ms or 0) / (beside.cpu_ms or 1):.2f} (server CPU a request, without/with)")

        httpx.post(f"{BASE}/v1/webhooks/{webhook_id}/disable", headers=admin, timeout=30).raise_for_status()
        fill_backlog(url, webhook_id, args.backlog)
        before, cpu_before = receiver.count, cpu_seconds(pid)
        started = time.monotonic()
        httpx.post(f"{BASE}/v1/webhooks/{webhook_id}/enable", headers=admin, timeout=30).raise_for_status()
        while pending(url):
            time.sleep(0.5)
        drained = time.monotonic() - started
        sent = receiver.count - before
        cpu_ms = (cpu_seconds(pid) - cpu_before) * 1000 / max(sent, 1)
        print(
            f"  backlog of {args.backlog:,}: drained in {drained:,.1f} s, {sent / drained:,.0f} deliveries/s, ", end=""
        )
        print(f"server CPU {cpu_ms:.2f} ms a delivery")


if __name__ == "__main__":
    main()
