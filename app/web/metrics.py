"""GET /metrics in Prometheus' text format: requests, decisions by rule set, the webhook outbox.

Requests are counted by each worker process for itself (a scrape reaches one worker: sum them
with the `instance` label, or run one worker per port). What the database knows is the same in
every worker: decisions by rule set (from the decision counts), the outbox's backlog and the age
of its oldest message, and messages by outcome, read when scraped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.models import DecisionMonthCount
from app.webhooks import subscriptions


class Metrics:
    """One app's registry: its request counters and what the database is asked when scraped."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "reitti_http_requests",
            "HTTP requests answered by this worker process, by route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "reitti_http_request_duration_seconds",
            "Time to answer, by route template.",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self._database: DatabaseCollector | None = None
        # Each label set's child, looked up once: `labels()` takes a lock and builds a key on every call.
        self._counted: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def answered(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its time to answer."""
        children = self._counted.get((method, route, status))
        if children is None:
            children = (self.requests.labels(method, route, str(status)), self.latency.labels(method, route))
            self._counted[(method, route, status)] = children
        counter, latency = children
        counter.inc()
        latency.observe(seconds)

    def watch(self, sessions: sessionmaker[Session]) -> None:
        """Read the database's figures with these sessions when scraped (from the lifespan)."""
        if self._database is not None:
            self.registry.unregister(self._database)
        self._database = DatabaseCollector(sessions)
        self.registry.register(self._database)

    def render(self) -> bytes:
        """The text format."""
        return generate_latest(self.registry)


class DatabaseCollector(Collector):
    """Figures every worker reads alike from the database, at each scrape."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def describe(self) -> Iterator[Metric]:
        """The families without their values: registering must not ask the database, which may be away."""
        yield from self._families()

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        decisions = GaugeMetricFamily(
            "reitti_decisions", "Decisions in the log, by rule set (from the decision counts).", labels=["ruleset"]
        )
        backlog = GaugeMetricFamily("reitti_webhook_backlog", "Webhook messages waiting to be delivered.")
        oldest = GaugeMetricFamily(
            "reitti_webhook_oldest_pending_seconds", "Age of the oldest webhook message waiting to be delivered."
        )
        outcomes = GaugeMetricFamily(
            "reitti_webhook_messages", "Webhook messages by outcome: pending, delivered, dead.", labels=["state"]
        )
        return decisions, backlog, oldest, outcomes

    def collect(self) -> Iterator[Metric]:
        decisions, backlog, oldest, outcomes = self._families()
        try:
            waiting, since, states = self._read(decisions)
        except OperationalError:  # the database is away: /readyz says so; the request counts still answer
            return
        backlog.add_metric([], float(waiting))
        oldest.add_metric([], (datetime.now(UTC) - since).total_seconds() if since else 0.0)
        for state, count in states.items():
            outcomes.add_metric([state], float(count))
        yield from (decisions, backlog, oldest, outcomes)

    def _read(self, decisions: GaugeMetricFamily) -> tuple[int, datetime | None, dict[str, int]]:
        with self._sessions() as session:
            query = select(DecisionMonthCount.ruleset_version, func.sum(DecisionMonthCount.decisions)).group_by(
                DecisionMonthCount.ruleset_version
            )
            for ruleset, count in session.execute(query):
                decisions.add_metric([ruleset], float(count or 0))
            waiting, since = subscriptions.backlog(session)
            return waiting, since, subscriptions.by_state(session)


class CountRequests:
    """ASGI middleware: each HTTP request counted by its route's template (never its path) and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.answered(scope["method"], route, status, time.monotonic() - started)
