"""Subscriptions: refused URLs and filters name their field; rotation signs with both secrets for a while."""

from __future__ import annotations

import time

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from app.webhooks.urls import UnsafeUrl, check_url
from tests.webhooks.conftest import Receiver
from tests.webhooks.test_delivery import post_events, subscribe


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://[::1]/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.1/hook",
        "https://169.254.169.254/latest/meta-data",  # a cloud's metadata service
        "https://[fd00:ec2::254]/",
        "https://100.64.0.1/",  # shared address space
        "https://0.0.0.0/",
        "https://[::ffff:127.0.0.1]/",
        "http://93.184.215.14/hook",  # global, but plain http
        "ftp://93.184.215.14/hook",
        "https://user:pw@93.184.215.14/hook",
        "https:///nohost",
    ],
)
def test_urls_into_the_services_neighbourhood_are_refused(url: str) -> None:
    with pytest.raises(UnsafeUrl):
        check_url(url, allow_hosts=frozenset())


def test_an_allowed_host_may_be_loopback_and_plain_http() -> None:
    check_url("http://127.0.0.1:9/hook", allow_hosts=frozenset({"127.0.0.1"}))
    check_url("https://93.184.215.14/hook", allow_hosts=frozenset())


class TestCreate:
    def test_a_private_address_is_refused_at_its_field(
        self, hooks_api: httpx.Client, hook_keys: dict[str, dict[str, str]]
    ) -> None:
        response = hooks_api.post("/v1/webhooks", json={"url": "https://10.0.0.7/x"}, headers=hook_keys["admin"])
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        (error,) = response.json()["errors"]
        assert error["loc"] == ["body", "url"]
        assert "10.0.0.7" not in response.text
        assert hooks_api.get("/v1/webhooks", headers=hook_keys["admin"]).json() == []

    def test_unknown_units_kinds_and_event_types_are_named(
        self, hooks_api: httpx.Client, hook_keys: dict[str, dict[str, str]]
    ) -> None:
        body = {"url": "http://127.0.0.1:9/x", "units": ["central-oeo", "nowhere"], "event_types": ["no.such"]}
        response = hooks_api.post("/v1/webhooks", json=body, headers=hook_keys["admin"])
        assert response.status_code == 422
        assert [e["loc"] for e in response.json()["errors"]] == [["body", "units", 1], ["body", "event_types", 0]]
        response = hooks_api.post(
            "/v1/webhooks", json={"url": "http://127.0.0.1:9/x", "kinds": ["gossip"]}, headers=hook_keys["admin"]
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "kinds", 0]

    def test_handovers_and_acknowledgements_may_be_subscribed_to(
        self, hooks_api: httpx.Client, hook_keys: dict[str, dict[str, str]]
    ) -> None:
        kinds = ["handover", "acknowledgement"]
        created = subscribe(hooks_api, hook_keys["admin"], "http://127.0.0.1:9/x", kinds=kinds)
        assert created["kinds"] == sorted(kinds)

    def test_the_secret_is_shown_once(self, hooks_api: httpx.Client, hook_keys: dict[str, dict[str, str]]) -> None:
        created = subscribe(hooks_api, hook_keys["admin"], "http://127.0.0.1:9/x")
        listed = hooks_api.get("/v1/webhooks", headers=hook_keys["admin"]).json()
        assert [w["id"] for w in listed] == [created["id"]]
        assert "secret" not in listed[0]
        assert created["secret"] not in hooks_api.get(f"/v1/webhooks/{created['id']}", headers=hook_keys["admin"]).text

    def test_a_coach_may_not_subscribe(self, hooks_api: httpx.Client, hook_keys: dict[str, dict[str, str]]) -> None:
        response = hooks_api.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/x"}, headers=hook_keys["coach"])
        assert response.status_code == 403


class TestLifecycle:
    def test_after_a_rotation_both_secrets_sign(
        self, hooks_api: httpx.Client, hook_keys: dict[str, dict[str, str]], receiver: Receiver
    ) -> None:
        admin = hook_keys["admin"]
        created = subscribe(hooks_api, admin, receiver.url)
        rotated = hooks_api.post(f"/v1/webhooks/{created['id']}/rotate", headers=admin).json()
        assert rotated["secret"] != created["secret"]
        assert rotated["previous_secret_until"] is not None
        post_events(hooks_api, hook_keys["integration"], 1, "rotated")
        receiver.wait_for(lambda: len(receiver.delivered()) == 1)
        (got,) = receiver.received
        assert len(got.headers["webhook-signature"].split(" ")) == 2
        for secret in (created["secret"], rotated["secret"]):
            assert Webhook(secret).verify(got.body, got.headers)["data"]["kind"] == "decision"

    def test_a_disabled_subscription_is_sent_nothing_until_enabled_and_a_removed_one_nothing_at_all(
        self, hooks_api: httpx.Client, hook_keys: dict[str, dict[str, str]], receiver: Receiver
    ) -> None:
        admin = hook_keys["admin"]
        created = subscribe(hooks_api, admin, receiver.url)
        assert hooks_api.post(f"/v1/webhooks/{created['id']}/disable", headers=admin).json()["enabled"] is False
        post_events(hooks_api, hook_keys["integration"], 1, "while-disabled")
        time.sleep(0.3)
        assert receiver.received == []
        assert hooks_api.post(f"/v1/webhooks/{created['id']}/enable", headers=admin).json()["enabled"] is True
        (decision_id,) = post_events(hooks_api, hook_keys["integration"], 1, "enabled-again")
        receiver.wait_for(lambda: len(receiver.delivered()) == 1)
        assert receiver.received[0].json()["data"]["decision_id"] == decision_id
        assert hooks_api.delete(f"/v1/webhooks/{created['id']}", headers=admin).status_code == 204
        assert hooks_api.get(f"/v1/webhooks/{created['id']}", headers=admin).status_code == 404
        post_events(hooks_api, hook_keys["integration"], 1, "removed")
        time.sleep(0.3)
        assert len(receiver.received) == 1
