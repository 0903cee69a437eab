"""Webhooks delivered to a real receiver on loopback, verified with the `standardwebhooks` package.

Each test subscribes the receiver through the API, posts events as a client system does, and
watches what arrives: every announcement, signed so that an implementation of the specification
nobody here wrote accepts it; retried with the same `webhook-id` when the receiver fails.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.web.api.test_events import IDENTITY_CODE, oeo_start
from tests.webhooks.conftest import Received, Receiver

pytestmark = pytest.mark.slow


def subscribe(api: httpx.Client, admin: dict[str, str], url: str, **fields: Any) -> dict[str, Any]:
    """Decisions only unless `kinds` says otherwise: the tests count one message per decision, and a
    customer's first oeo.start is a handover too."""
    fields.setdefault("kinds", ["decision"])
    response = api.post("/v1/webhooks", json={"url": url, **fields}, headers=admin)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def post_events(api: httpx.Client, key: dict[str, str], count: int, prefix: str) -> list[str]:
    """Post `count` events side by side; their decision ids."""

    def post(number: int) -> str:
        response = api.post("/v1/events", json=oeo_start(f"{prefix}-{number}"), headers=key)
        assert response.status_code == 201, response.text
        decision_id: str = response.json()["decision_id"]
        return decision_id

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(post, range(count)))


def verified(secret: str, received: Received) -> Any:
    return Webhook(secret).verify(received.body, received.headers)


def log_of(api: httpx.Client, admin: dict[str, str], webhook_id: int, **params: str) -> list[dict[str, Any]]:
    response = api.get(f"/v1/webhooks/{webhook_id}/deliveries", params=params, headers=admin)
    assert response.status_code == 200, response.text
    deliveries: list[dict[str, Any]] = response.json()
    return deliveries


class TestDelivered:
    def test_every_decision_arrives_once_signed_as_the_specification_says(
        self, hooks_api: httpx.Client, hook_keys: dict[str, dict[str, str]], receiver: Receiver
    ) -> None:
        webhook = subscribe(hooks_api, hook_keys["admin"], receiver.url)
        assert webhook["secret"].startswith("whsec_")
        decision_ids = post_events(hooks_api, hook_keys["integration"], 30, "every")
        receiver.wait_for(lambda: len(receiver.delivered()) >= 30)
        time.sleep(0.3)  # anything more would be a duplicate
        assert len(receiver.received) == 30
        announced = [verified(webhook["secret"], got) for got in receiver.received]
        assert sorted(a["data"]["decision_id"] for a in announced) == sorted(decision_ids)
        first = announced[0]
        assert first["type"] == "decision.created"
        assert set(first["data"]) == {
            "kind", "record_id", "decision_id", "event_id", "event_type", "client", "units",
            "occurred_at", "recorded_at", "url",
        }  # fmt: skip
        assert first["data"]["url"] == f"/v1/decisions/{first['data']['decision_id']}"
        assert first["data"]["units"] == ["central-oeo"]
        assert all(IDENTITY_CODE.encode() not in got.body for got in receiver.received)
        assert receiver.concurrent_repeats == []
        states = {d["state"] for d in log_of(hooks_api, hook_keys["admin"], webhook["id"])}
        assert states == {"delivered"}

    def test_a_signature_made_with_another_secret_is_refused(
        self, hooks_api: httpx.Client, hook_keys: dict[str, dict[str, str]], receiver: Receiver
    ) -> None:
        subscribe(hooks_api, hook_keys["admin"], receiver.url)
        post_events(hooks_api, hook_keys["integration"], 1, "other-secret")
        receiver.wait_for(lambda: len(receiver.delivered()) == 1)
        other = subscribe(hooks_api, hook_keys["admin"], receiver.url + "/other")["secret"]
        with pytest.raises(WebhookVerificationError):
            verified(other, receiver.received[0])

    def test_the_full_record_is_sent_to_those_who_ask_and_never_the_customer(
        self, hooks_api: httpx.Client, hook_keys: dict[str, dict[str, str]], receiver: Receiver
    ) -> None:
        webhook = subscribe(hooks_api, hook_keys["admin"], receiver.url, full_record=True)
        (decision_id,) = post_events(hooks_api, hook_keys["integration"], 1, "full")
        receiver.wait_for(lambda: len(receiver.delivered()) == 1)
        data = verified(webhook["secret"], receiver.received[0])["data"]
        assert data["record"]["decision_id"] == decision_id
        assert data["record"]["handler"]["unit"] == "central-oeo"
        assert IDENTITY_CODE.encode() not in receiver.received[0].body
        assert b"pseudonym" not in receiver.received[0].body

    def test_an_override_is_announced_to_those_who_want_overrides(
        self, hooks_api: httpx.Client, hook_keys: dict[str, dict[str, str]], receiver: Receiver
    ) -> None:
        webhook = subscribe(hooks_api, hook_keys["admin"], receiver.url, kinds=["override"], full_record=True)
        (decision_id,) = post_events(hooks_api, hook_keys["integration"], 1, "override")
        response = hooks_api.post(
            f"/v1/decisions/{decision_id}/overrides",
            json={"customership": "local-244", "reason": "customer_request", "text": "asiakas pyysi"},
            headers=hook_keys["admin"],
        )
        assert response.status_code == 201, response.text
        receiver.wait_for(lambda: len(receiver.delivered()) == 1)
        time.sleep(0.3)
        (got,) = receiver.received  # the decision itself was not wanted
        announced = verified(webhook["secret"], got)
        assert announced["type"] == "override.created"
        assert announced["data"]["decision_id"] == decision_id
        assert announced["data"]["record_id"] == response.json()["override_id"]
        assert "local-244" in announced["data"]["units"]
        assert b"asiakas pyysi" not in got.body  # a coach's free text stays in the service

    def test_a_handover_and_the_unit_s_acknowledgement_are_announced_to_those_who_want_them(
        self, hooks_api: httpx.Client, hook_keys: dict[str, dict[str, str]], receiver: Receiver
    ) -> None:
        kinds = ["handover", "acknowledgement"]
        webhook = subscribe(hooks_api, hook_keys["admin"], receiver.url, kinds=kinds, full_record=True)
        # oeo.start moves a Kempele customer from the local unit to the OEO experts (CATALOGUE 2.2.3 a).
        (decision_id,) = post_events(hooks_api, hook_keys["integration"], 1, "handover")
        receiver.wait_for(lambda: len(receiver.delivered()) == 1)
        handover = verified(webhook["secret"], receiver.received[0])
        assert handover["type"] == "handover.created"
        assert handover["data"]["decision_id"] == decision_id
        assert handover["data"]["units"] == ["local-244", "central-oeo"]
        assert handover["data"]["record"] == {"from_unit": "local-244", "to_unit": "central-oeo", "anomaly": None}

        taken = hooks_api.post(
            f"/v1/decisions/{decision_id}/acknowledgements", json={"unit": "central-oeo"}, headers=hook_keys["unit"]
        )
        assert taken.status_code == 201, taken.text
        receiver.wait_for(lambda: len(receiver.delivered()) == 2)
        time.sleep(0.3)
        assert len(receiver.received) == 2  # the decision itself was not wanted
        answer = verified(webhook["secret"], receiver.received[1])
        assert answer["type"] == "acknowledgement.created"
        assert answer["data"]["record_id"] == taken.json()["acknowledgement_id"]
        assert answer["data"]["units"] == ["central-oeo"]
        assert answer["data"]["record"]["outcome"] == "taken"

    def test_filters_by_unit_and_event_type_let_only_their_records_through(
        self, hooks_api: httpx.Client, hook_keys: dict[str, dict[str, str]], receiver: Receiver
    ) -> None:
        subscribe(hooks_api, hook_keys["admin"], receiver.url + "/unit", units=["local-139"])
        subscribe(hooks_api, hook_keys["admin"], receiver.url + "/type", event_types=["eu_job_search"])
        wanted = subscribe(hooks_api, hook_keys["admin"], receiver.url + "/both", units=["central-oeo"])
        post_events(hooks_api, hook_keys["integration"], 2, "filters")
        receiver.wait_for(lambda: len(receiver.delivered()) == 2)
        time.sleep(0.3)
        assert len(receiver.received) == 2
        assert all(verified(wanted["secret"], got) for got in receiver.received)


class TestRetries:
    def test_a_receiver_answering_500_gets_the_same_message_again_until_it_takes_it(
        self, hooks_api: httpx.Client, hook_keys: dict[str, dict[str, str]], receiver: Receiver
    ) -> None:
        receiver.answer = lambda number, _: (500 if number < 2 else 200, {}, 0.0)
        webhook = subscribe(hooks_api, hook_keys["admin"], receiver.url)
        post_events(hooks_api, hook_keys["integration"], 1, "retry-500")
        receiver.wait_for(lambda: len(receiver.delivered()) == 1)
        assert len({got.message_id for got in receiver.received}) == 1
        assert len(receiver.received) == 3
        assert all(verified(webhook["secret"], got) for got in receiver.received)
        (delivery,) = log_of(hooks_api, hook_keys["admin"], webhook["id"])
        assert delivery["state"] == "delivered"
        assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 200]
        assert delivery["attempts"][0]["error"] == "answered 500"

    def test_a_receiver_that_times_out_is_tried_again_with_the_same_id(
        self, hooks_api: httpx.Client, hook_keys: dict[str, dict[str, str]], receiver: Receiver
    ) -> None:
        receiver.answer = lambda number, _: (200, {}, 1.6 if number == 0 else 0.0)  # the timeout is 1 s here
        webhook = subscribe(hooks_api, hook_keys["admin"], receiver.url)
        post_events(hooks_api, hook_keys["integration"], 1, "timeout")
        receiver.wait_for(lambda: len(receiver.received) >= 2 and receiver.received[1].status == 200)
        assert receiver.received[0].message_id == receiver.received[1].message_id
        (delivery,) = log_of(hooks_api, hook_keys["admin"], webhook["id"])
        assert [a["error"] for a in delivery["attempts"]] == ["timed out", None]

    def test_retry_after_is_honoured(
        self, hooks_api: httpx.Client, hook_keys: dict[str, dict[str, str]], receiver: Receiver
    ) -> None:
        times: list[float] = []

        def answer(number: int, _: Received) -> tuple[int, dict[str, str], float]:
            times.append(time.monotonic())
            return (503, {"Retry-After": "2"}, 0.0) if number == 0 else (200, {}, 0.0)

        receiver.answer = answer
        subscribe(hooks_api, hook_keys["admin"], receiver.url)
        post_events(hooks_api, hook_keys["integration"], 1, "retry-after")
        receiver.wait_for(lambda: len(receiver.delivered()) == 1)
        assert times[1] - times[0] >= 1.9  # not the schedule's 0.2 s

    def test_a_receiver_down_for_a_while_gets_everything_when_it_is_back(
        self, hooks_api: httpx.Client, hook_keys: dict[str, dict[str, str]], webhook_database: str
    ) -> None:
        from sqlalchemy import text

        from app.db import make_engine

        down = Receiver()
        port, url = down.port, down.url
        down.close()  # nothing listens there now: connections are refused
        webhook = subscribe(hooks_api, hook_keys["admin"], url)
        decision_ids = post_events(hooks_api, hook_keys["integration"], 5, "down")
        engine = make_engine(webhook_database)
        deadline = time.monotonic() + 10
        with engine.connect() as connection:
            while connection.execute(text("SELECT min(attempts) FROM webhook_deliveries")).scalar_one() < 2:
                assert time.monotonic() < deadline
                time.sleep(0.02)
                connection.rollback()
        engine.dispose()
        back = Receiver(port=port)
        try:
            back.wait_for(lambda: len(back.delivered()) == 5)
            assert sorted(verified(webhook["secret"], g)["data"]["decision_id"] for g in back.received) == sorted(
                decision_ids
            )
        finally:
            back.close()
        errors = {a["error"] for d in log_of(hooks_api, hook_keys["admin"], webhook["id"]) for a in d["attempts"]}
        assert "could not connect (ConnectError)" in errors

    def test_after_the_last_attempt_a_message_is_dead_visible_and_redeliverable(
        self, hooks_api: httpx.Client, hook_keys: dict[str, dict[str, str]], receiver: Receiver
    ) -> None:
        receiver.answer = lambda number, _: (500, {}, 0.0)
        webhook = subscribe(hooks_api, hook_keys["admin"], receiver.url)
        post_events(hooks_api, hook_keys["integration"], 2, "dead")
        admin = hook_keys["admin"]
        receiver.wait_for(lambda: len(log_of(hooks_api, admin, webhook["id"], state="dead")) == 2)
        assert len(receiver.received) == 2 * 4  # the test schedule has four attempts
        (one, _) = log_of(hooks_api, admin, webhook["id"], state="dead")
        receiver.answer = lambda number, _: (200, {}, 0.0)
        response = hooks_api.post(f"/v1/webhooks/{webhook['id']}/deliveries/{one['id']}/redeliver", headers=admin)
        assert response.json() == {"redelivered": 1}
        receiver.wait_for(lambda: len(receiver.delivered()) == 1)
        assert one["message_id"] in receiver.delivered()
        response = hooks_api.post(f"/v1/webhooks/{webhook['id']}/redeliver", headers=admin)
        assert response.json() == {"redelivered": 1}
        receiver.wait_for(lambda: len(receiver.delivered()) == 2)
        again = hooks_api.post(f"/v1/webhooks/{webhook['id']}/deliveries/{one['id']}/redeliver", headers=admin)
        assert again.status_code == 404  # delivered now: nothing dead to send again

    def test_410_disables_the_subscription_and_nothing_more_is_announced_to_it(
        self, hooks_api: httpx.Client, hook_keys: dict[str, dict[str, str]], receiver: Receiver
    ) -> None:
        receiver.answer = lambda number, _: (410, {}, 0.0)
        webhook = subscribe(hooks_api, hook_keys["admin"], receiver.url)
        post_events(hooks_api, hook_keys["integration"], 1, "gone")
        receiver.wait_for(lambda: len(receiver.received) == 1)
        admin = hook_keys["admin"]
        receiver.wait_for(lambda: not hooks_api.get(f"/v1/webhooks/{webhook['id']}", headers=admin).json()["enabled"])
        assert hooks_api.get(f"/v1/webhooks/{webhook['id']}", headers=admin).json()["disabled_reason"] == "gone"
        post_events(hooks_api, hook_keys["integration"], 1, "gone-after")
        time.sleep(0.3)
        assert len(receiver.received) == 1
        assert [d["state"] for d in log_of(hooks_api, admin, webhook["id"])] == ["dead"]
