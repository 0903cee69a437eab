"""Hostile input: schema-driven fuzzing, arbitrary JSON, oversized and deeply nested bodies."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.openapi import from_url
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.conftest import KeyMaker, Server


@pytest.fixture
def fuzz_key(api: httpx.Client, make_key: KeyMaker) -> dict[str, str]:
    return make_key(name="fuzzer")


# The schema cannot say which attributes each event type takes, which unit ids exist, that a
# period's `to` is not before its `from`, nor which hosts a webhook may reach (those whose addresses
# are global): a schema-valid request there may still be a 422 that names the field. Everywhere else
# a request the schema allows must be accepted, so that the document tells the truth.
BODIES_THE_SCHEMA_CANNOT_DESCRIBE = {
    "/v1/events",
    "/v1/simulate",
    "/v1/decisions/{decision_id}/overrides",
    "/v1/reports/cost-sharing",
    "/v1/webhooks",
}


@pytest.mark.slow
@pytest.mark.parametrize("role", ["integration", "admin"])
def test_no_5xx_and_every_answer_within_the_schema(
    server: Server, api: httpx.Client, make_key: KeyMaker, role: str
) -> None:
    """Schemathesis walks every operation of /openapi.json, as an integration and as an admin."""
    key = make_key(role=role, name=f"fuzzer-{role}")
    api_schema = from_url(f"{server.base_url}/openapi.json")
    checked = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/v1/rulesets/{before}/diff/{after}":
            continue  # a whole-domain walk per valid pair: covered by its own test
        excluded = [positive_data_acceptance] if operation.path in BODIES_THE_SCHEMA_CANNOT_DESCRIBE else []
        _walk(operation, server.base_url, key, excluded)
        checked.append(f"{operation.method.upper()} {operation.path}")
    assert len(checked) >= 9


def _walk(operation: Any, base_url: str, key: dict[str, str], excluded: list[Any]) -> None:
    """Call one operation with the cases Schemathesis draws from its schema, checking every answer."""

    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def call(case: Any) -> None:
        case.call_and_validate(base_url=base_url, headers=key, excluded_checks=excluded)

    call()


# Text as an attacker writes it: lone surrogates and NULs (which PostgreSQL cannot store), and
# values longer than their columns, beside ordinary text.
HOSTILE_TEXT = (
    st.text(max_size=20)
    | st.text(st.characters(codec=None, categories=["Cs", "Cc", "Lu", "Nd"]), max_size=12)
    | st.sampled_from(["\x00", "\ud800", "a\udfff", "x" * 37, "x" * 129, "131052-308T", "0112038-9"])
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | HOSTILE_TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(HOSTILE_TEXT, children, max_size=5),
    max_leaves=25,
)
EVENT_KEYS = st.fixed_dictionaries(
    {},
    optional={
        "event_id": JSON | st.text(max_size=140) | HOSTILE_TEXT,
        "event_type": JSON | st.sampled_from(["oeo.start", "information_advice", "employer.advice"]),
        "occurred_at": JSON | st.just("2025-03-03T09:15:00+02:00"),
        "customer": JSON
        | st.fixed_dictionaries(
            {},
            optional={
                "type": JSON | st.sampled_from(["jobseeker", "employer", "person"]),
                "id": JSON | HOSTILE_TEXT | st.sampled_from(["131052-308T", "131052-308X", "0112038-9", "x"]),
                "home_municipality": JSON | st.sampled_from(["244", "564", "091", "999", "24"]),
                "language": JSON | st.sampled_from(["fi", "FI", "en"]),
            },
        ),
        "attributes": JSON,
    },
)


@pytest.fixture
def session(server: Server, fuzz_key: dict[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, headers=fuzz_key, timeout=30) as client:
        yield client


@pytest.mark.slow
def test_arbitrary_json_bodies_get_4xx_or_a_decision_never_5xx(session: httpx.Client) -> None:
    statuses: set[int] = set()

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=JSON | EVENT_KEYS)
    def post(body: Any) -> None:
        response = session.post("/v1/events", content=json.dumps(body), headers={"content-type": "application/json"})
        statuses.add(response.status_code)
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json"

    post()
    assert 422 in statuses


@pytest.mark.parametrize(
    "body",
    [b"[" * 30_000 + b"]" * 30_000, b'{"a":' * 10_000 + b"1" + b"}" * 10_000, b'{"event_id": ', b"\xff\xfe"],
    ids=["deep lists", "deep objects", "truncated", "not utf-8"],
)
def test_malformed_and_deeply_nested_bodies_are_refused_cheaply(session: httpx.Client, body: bytes) -> None:
    started = time.perf_counter()
    response = session.post("/v1/events", content=body, headers={"content-type": "application/json"})
    assert response.status_code in (400, 422)
    assert response.headers["content-type"] == "application/problem+json"
    assert time.perf_counter() - started < 5  # a sanity bound on a hang, not a speed target


def _decision_id(session: httpx.Client) -> str:
    body = {
        "event_id": "hostile",
        "event_type": "oeo.start",
        "occurred_at": "2025-03-03T09:15:00+02:00",
        "customer": {"type": "jobseeker", "id": "131052-308T", "home_municipality": "244"},
        "attributes": {},
    }
    decision_id: str = session.post("/v1/events", json=body).json()["decision_id"]
    return decision_id


# Each was a 500 on PostgreSQL or on both: a value longer than its column, a NUL, a lone surrogate.
# Bodies are JSON text, so that escapes like \ud800 reach the server as a client would send them.
EVENT = (
    '{"event_id": "s", "event_type": %s, "occurred_at": "2025-03-03T09:15:00+02:00",'
    ' "customer": {"type": "jobseeker", "id": %s, "home_municipality": "244"}, "attributes": %s}'
)
OVERRIDE = '{"handler": "local-564", "reason": "customer_moved", "text": %s}'
CHECKPOINT = "seq=1&hash=" + "0" * 64 + "&signature=" + "0" * 64
HOSTILE_REQUESTS = {
    "37-character decision id": ("GET", "/v1/decisions/" + "a" * 37, None),
    "37-character id, link": ("GET", "/v1/decisions/" + "a" * 37 + "/link", None),
    "NUL in a path": ("GET", "/v1/decisions/a%00b", None),
    "NUL in overrides' path": ("GET", "/v1/decisions/%00/overrides", None),
    "NUL in a filter": ("GET", "/v1/decisions?event_type=a%00", None),
    "NUL in a stats filter": ("GET", "/v1/decisions/stats?handler=%00", None),
    "NUL in an access filter": ("GET", "/v1/audit/access?who=%00", None),
    "long access filter": ("GET", "/v1/audit/access?decision_id=" + "a" * 37, None),
    "NUL in a rule set": ("GET", "/v1/rulesets/%00", None),
    "NUL in the register's rule set": ("GET", "/v1/interpretations?ruleset=%00", None),
    "year 0 in the register's period": ("GET", "/v1/interpretations?since=0000-01-01", None),
    "NUL in a checkpoint": ("GET", "/v1/audit/verify?" + CHECKPOINT + "&at=%00", None),
    "NUL in override text": ("POST", "/v1/decisions/{id}/overrides", OVERRIDE % '"a\\u0000"'),
    "surrogate in override text": ("POST", "/v1/decisions/{id}/overrides", OVERRIDE % '"\\ud800"'),
    "surrogate in an attribute name": ("POST", "/v1/events", EVENT % ('"oeo.start"', '"x"', '{"\\ud800": 1}')),
    "surrogate in an extra field": ("POST", "/v1/events", '{"\\udfff": 1}'),
    "surrogate in customer.id": ("POST", "/v1/events", EVENT % ('"oeo.start"', '"\\ud800"', "{}")),
    "NUL in event_type": ("POST", "/v1/events", EVENT % ('"a\\u0000"', '"x"', "{}")),
    "NUL in an attribute value": ("POST", "/v1/events", EVENT % ('"oeo.start"', '"x"', '{"a": "\\u0000"}')),
}


@pytest.mark.parametrize("name", HOSTILE_REQUESTS)
def test_hostile_values_get_a_4xx_problem_never_a_500(
    api: httpx.Client, make_key: KeyMaker, session: httpx.Client, name: str
) -> None:
    method, path, body = HOSTILE_REQUESTS[name]
    if "{id}" in path:
        path = path.replace("{id}", _decision_id(session))
    # Events are posted by an integration; the rest is read or overridden by an admin, who may do both.
    who = make_key(name="poster") if path == "/v1/events" else make_key(role="admin", name="admin")
    headers = {**who, "content-type": "application/json"}
    response = api.request(method, path, content=body, headers=headers)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == response.status_code  # a whole, decodable problem document
