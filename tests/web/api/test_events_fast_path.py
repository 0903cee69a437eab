"""POST /v1/events' two doors (app/web/api/events.py): the fast path answers only what the route would
store, exactly as the route answers it, and hands every other request to the route, body and all."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from app.web.api.events import PostEventFastPath
from tests.conftest import KeyMaker, Server, count_rows
from tests.web.api.test_events import oeo_start

# What differs between two answers of the same kind by nature: when, and the ids made for them.
OWN_VALUES = {"decision_id", "event_id", "decided_at"}
OWN_HEADERS = {"date", "location", "content-length"}


def _comparable(response: httpx.Response) -> tuple[int, set[str], dict[str, Any]]:
    body = {name: value for name, value in response.json().items() if name not in OWN_VALUES}
    return response.status_code, set(response.headers) - OWN_HEADERS, body


class TestTheSameAnswersThroughEitherDoor:
    """The route answers a key's first request (its key is looked up, then remembered); the fast path the next."""

    def test_a_new_event_a_repeat_and_a_conflict(
        self, api: httpx.Client, make_key: KeyMaker, database_url: str
    ) -> None:
        key = make_key()
        by_route = api.post("/v1/events", json=oeo_start("door-1"), headers=key)
        by_fast_path = api.post("/v1/events", json=oeo_start("door-2"), headers=key)
        assert by_route.status_code == 201, by_route.text
        assert _comparable(by_fast_path) == _comparable(by_route)
        assert by_fast_path.headers["location"] == f"/v1/decisions/{by_fast_path.json()['decision_id']}"

        repeat = api.post("/v1/events", json=oeo_start("door-2"), headers=key)
        assert repeat.status_code == 200
        assert repeat.json() == by_fast_path.json()

        other_body = oeo_start("door-2", occurred_at="2025-03-04T09:15:00+02:00")
        conflict = api.post("/v1/events", json=other_body, headers=key)
        assert conflict.status_code == 409
        assert conflict.headers["content-type"] == "application/problem+json"
        assert conflict.json()["type"] == "urn:reitti:problem:event-id-conflict"
        assert count_rows(database_url) == 2

    def test_an_error_of_the_fast_path_names_the_rule_set_in_force_as_the_routes_do(
        self, api: httpx.Client, make_key: KeyMaker
    ) -> None:
        key = make_key()
        api.post("/v1/events", json=oeo_start("first"), headers=key).raise_for_status()
        by_route = api.post("/v1/events", json=oeo_start("refused", event_type="no.such.type"), headers=key)
        other_body = oeo_start("first", occurred_at="2025-03-04T09:15:00+02:00")
        by_fast_path = api.post("/v1/events", json=other_body, headers=key)
        assert (by_route.status_code, by_fast_path.status_code) == (422, 409)
        for stamp in ("reitti-ruleset", "reitti-ruleset-sha256"):
            assert by_fast_path.headers[stamp] == by_route.headers[stamp]

    def test_a_body_over_the_limit_is_refused_for_a_remembered_key_too(
        self, api: httpx.Client, make_key: KeyMaker, database_url: str
    ) -> None:
        key = make_key()
        api.post("/v1/events", json=oeo_start("remember-me"), headers=key).raise_for_status()
        big = json.dumps(oeo_start("big")).encode() + b" " * 70_000  # a valid event, in too long a body
        as_json = {**key, "Content-Type": "application/json"}
        assert api.post("/v1/events", content=big, headers=as_json).status_code == 413
        chunked = api.post("/v1/events", content=iter([big[:1000], big[1000:]]), headers=as_json)
        assert chunked.status_code == 413
        assert count_rows(database_url) == 1

    @pytest.mark.parametrize(
        "change",
        [
            {"event_type": "no.such.type"},
            {"occurred_at": "yesterday"},
            {"customer": {"type": "jobseeker", "id": "131052-308X", "home_municipality": "244"}},
            {"customer": {"type": "jobseeker", "id": "131052-308T", "home_municipality": "244"}, "extra": 1},
        ],
    )
    def test_a_refused_event_is_refused_alike_before_and_after_the_key_is_remembered(
        self, api: httpx.Client, make_key: KeyMaker, change: dict[str, Any], database_url: str
    ) -> None:
        first_key, second_key = make_key(name="client-a"), make_key(name="client-b")
        api.post("/v1/events", json=oeo_start("remember-me"), headers=second_key).raise_for_status()
        body = {**oeo_start("refused"), **change}
        unremembered = api.post("/v1/events", json=body, headers=first_key)
        remembered = api.post("/v1/events", json=body, headers=second_key)
        assert unremembered.status_code == 422
        assert (remembered.status_code, remembered.json()) == (unremembered.status_code, unremembered.json())
        assert count_rows(database_url) == 1


class Downstream:
    """The app behind the fast path, as a probe: what reached it, answered 418 so that it shows."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        self.bodies.append(message.get("body", b""))
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def _through_fast_path(server: Server, requests: list[dict[str, Any]]) -> tuple[list[httpx.Response], Downstream]:
    """Each request through a PostEventFastPath of the running server's app, with a probe behind it."""
    downstream = Downstream()
    door = PostEventFastPath(downstream, fastapi_app=server.server.config.app)

    async def send_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=door), base_url="http://reitti") as client:
            return [await client.request(**request) for request in requests]

    return asyncio.run(send_all()), downstream


async def _chunked(body: bytes) -> AsyncIterator[bytes]:
    """A body without a Content-Length, as an AsyncClient sends it."""
    yield body


class TestWhichDoorAnswers:
    def test_the_fast_path_stores_a_valid_event_of_a_remembered_key_itself(
        self, api: httpx.Client, make_key: KeyMaker, server: Server, database_url: str
    ) -> None:
        key = make_key()
        api.post("/v1/events", json=oeo_start("remember-me"), headers=key).raise_for_status()
        (answer,), downstream = _through_fast_path(
            server, [{"method": "POST", "url": "/v1/events", "json": oeo_start("fast"), "headers": key}]
        )
        assert answer.status_code == 201, answer.text
        assert downstream.bodies == []
        stored = api.get(f"/v1/decisions/{answer.json()['decision_id']}", headers=key)
        assert stored.json()["event_id"] == "fast"
        assert count_rows(database_url) == 2

    def test_everything_else_goes_to_the_route_with_its_body(
        self, api: httpx.Client, make_key: KeyMaker, server: Server, database_url: str
    ) -> None:
        key, unseen = make_key(), make_key(name="client-b")
        api.post("/v1/events", json=oeo_start("remember-me"), headers=key).raise_for_status()
        valid = json.dumps(oeo_start("valid")).encode()
        invalid = json.dumps(oeo_start("invalid", event_type="no.such.type")).encode()
        as_json = {"Content-Type": "application/json"}
        requests = [
            {"method": "POST", "url": "/v1/events", "content": invalid, "headers": {**key, **as_json}},
            {"method": "POST", "url": "/v1/events", "content": valid, "headers": {**unseen, **as_json}},
            {"method": "POST", "url": "/v1/events", "content": valid, "headers": {**key, "Content-Type": "text/plain"}},
            {"method": "POST", "url": "/v1/events", "content": b"{not json", "headers": {**key, **as_json}},
            {
                "method": "POST",
                "url": "/v1/events",
                "content": valid,
                "headers": {**key, **as_json, "X-Road-Id": "x" * 300},
            },
            {"method": "GET", "url": "/v1/events", "headers": key},
            # No Content-Length: the body limit must see it before anything reads it.
            {"method": "POST", "url": "/v1/events", "content": _chunked(valid), "headers": {**key, **as_json}},
        ]
        answers, downstream = _through_fast_path(server, requests)
        assert [answer.status_code for answer in answers] == [418] * len(requests)
        assert downstream.bodies == [invalid, valid, valid, b"{not json", valid, b"", valid]
        assert count_rows(database_url) == 1
