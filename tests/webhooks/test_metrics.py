"""GET /metrics: Prometheus' text format, for an admin's key or the metrics token, never for anyone else."""

from __future__ import annotations

import re

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Server
from tests.webhooks.conftest import Receiver, webhook_settings
from tests.webhooks.test_delivery import post_events, subscribe


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_requests_decisions_and_the_outbox_backlog_are_measured(
    hooks_api: httpx.Client, hook_keys: dict[str, dict[str, str]], receiver: Receiver
) -> None:
    receiver.answer = lambda number, _: (503, {"Retry-After": "600"}, 0.0)  # everything waits: a backlog
    subscribe(hooks_api, hook_keys["admin"], receiver.url)
    post_events(hooks_api, hook_keys["integration"], 3, "metrics")
    receiver.wait_for(lambda: len(receiver.received) == 3)
    response = hooks_api.get("/metrics", headers=hook_keys["admin"])
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    posted = ("reitti_http_requests_total", (("method", "POST"), ("route", "/v1/events"), ("status", "201")))
    assert found[posted] >= 3
    assert found[("reitti_decisions", (("ruleset", "2025-01-01"),))] == 3
    assert found[("reitti_webhook_backlog", ())] == 3
    assert found[("reitti_webhook_oldest_pending_seconds", ())] > 0
    assert found[("reitti_webhook_messages", (("state", "pending"),))] == 3
    # Routes by their template: a decision's id never becomes a label.
    hooks_api.get("/v1/decisions/00000000-0000-4000-8000-000000000000", headers=hook_keys["admin"])
    text = hooks_api.get("/metrics", headers=hook_keys["admin"]).text
    assert 'route="/v1/decisions/{decision_id}"' in text
    assert not re.search(r"00000000-0000", text)
    assert hooks_api.get("/readyz").status_code == 200  # a backlog is a metric, not unreadiness


def test_only_an_admin_or_the_metrics_token_reads_them(
    webhook_database: str, hooks_api: httpx.Client, hook_keys: dict[str, dict[str, str]]
) -> None:
    assert hooks_api.get("/metrics").status_code == 401
    assert hooks_api.get("/metrics", headers=hook_keys["coach"]).status_code == 403
    with Server(webhook_settings(webhook_database, metrics_token="scrape-me")) as server:
        assert httpx.get(f"{server.base_url}/metrics", headers={"Authorization": "Bearer scrape-me"}).status_code == 200
        assert httpx.get(f"{server.base_url}/metrics", headers={"Authorization": "Bearer guess"}).status_code == 401
