"""``/api/v1/notifications``: an admin adds, lists, removes and test-sends channels and reads
the deliveries over HTTP, with the service calls ``certfleet notify`` makes; secrets never
leave the server; a narrower token is refused with 403 problem+json."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator

import pytest

from tests.api.conftest import CERTS, ApiClient, assert_problem, stored_rows
from tests.conftest import Cli
from tests.lifecycle.notifications.receivers import HttpReceiver
from tests.ports import free_port

CHANNELS = "/api/v1/notifications/channels"
DELIVERIES = "/api/v1/notifications/deliveries"


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    running = HttpReceiver()
    yield running
    running.close()


def _add(api: ApiClient, token: str, **body: object) -> dict[str, object]:
    response = api.post(CHANNELS, token=token, json=body)
    assert response.status_code == 201, response.text
    added: dict[str, object] = response.json()
    return added


def test_a_channel_added_over_http_is_listed_as_the_cli_lists_it_without_its_secret(
    api: ApiClient, admin: str, cli: Cli, receiver: HttpReceiver
) -> None:
    added = _add(
        api,
        admin,
        type="webhook",
        team="web",
        options={"url": receiver.url},
        secret="s3cret-hmac-key",
        events=["issued", "revoked"],
        name="web-hook",
    )
    slack = _add(api, admin, type="slack", options={"url": "https://hooks.slack.test/T0/B0/XXXXSECRET"})

    listed = api.get(CHANNELS, token=admin)

    assert (added["team"], added["secret"], added["target"], added["events"]) == (
        "web",
        True,
        receiver.url,
        ["issued", "revoked"],
    )
    assert "s3cret-hmac-key" not in listed.text and "XXXXSECRET" not in listed.text
    assert {c["id"]: c["target"] for c in listed.json()}[slack["id"]] == "https://hooks.slack.test/…"
    assert listed.json() == json.loads(cli("notify", "channel", "list", "--format", "json").stdout)
    only_web = api.get(CHANNELS, token=admin, params={"team": "web"}).json()
    assert [c["id"] for c in only_web] == [added["id"]]


def test_test_send_reaches_the_receiver_signed_and_a_refusal_is_an_answer(
    api: ApiClient, admin: str, receiver: HttpReceiver
) -> None:
    added = _add(api, admin, type="webhook", options={"url": receiver.url}, secret="k3y")

    sent = api.post(f"{CHANNELS}/{added['id']}/test", token=admin)

    assert sent.status_code == 200 and sent.json() == {"ok": True, "detail": "HTTP 204"}
    [request] = receiver.requests
    assert request.json()["event"] == "test"
    expected = hmac.new(b"k3y", request.body, hashlib.sha256).hexdigest()
    assert expected in request.headers["x-certfleet-signature"]
    receiver.status = 500
    refused = api.post(f"{CHANNELS}/{added['id']}/test", token=admin)
    assert refused.status_code == 200
    assert refused.json() == {"ok": False, "detail": "HTTP 500 Internal Server Error"}
    dead = _add(api, admin, type="webhook", options={"url": f"http://127.0.0.1:{free_port()}/hook"})
    unreachable = api.post(f"{CHANNELS}/{dead['id']}/test", token=admin).json()
    assert unreachable["ok"] is False and unreachable["detail"]
    assert_problem(api.post(f"{CHANNELS}/nosuch/test", token=admin), 404, "no notification channel 'nosuch'")


def test_deliveries_are_what_the_cli_lists_and_filters_are_checked(
    api: ApiClient, admin: str, cli: Cli, receiver: HttpReceiver
) -> None:
    _add(api, admin, type="webhook", options={"url": receiver.url})
    issued = api.post(CERTS, token=admin, json={"key_type": "ec-p256", "sans": ["a.example.test"]})
    assert issued.status_code == 201
    api.platform.notifications.dispatch_once()

    delivered = api.get(DELIVERIES, token=admin, params={"state": "delivered"})

    assert [(d["event"], d["state"]) for d in delivered.json()] == [("issued", "delivered")]
    assert api.get(DELIVERIES, token=admin, params={"state": "failed"}).json() == []
    local = cli("notify", "deliveries", "--format", "json", "--limit", "5")
    assert api.get(DELIVERIES, token=admin, params={"limit": 5}).json() == json.loads(local.stdout)
    assert_problem(api.get(DELIVERIES, token=admin, params={"state": "lost"}), 400, "unknown state 'lost'")
    assert_problem(api.get(DELIVERIES, token=admin, params={"limit": 0}), 422, "limit")
    assert_problem(api.get(DELIVERIES, token=admin, params={"limit": 10001}), 422, "limit")


def test_remove_then_remove_again_is_404(api: ApiClient, admin: str, receiver: HttpReceiver) -> None:
    added = _add(api, admin, type="webhook", options={"url": receiver.url})

    assert api.request("DELETE", f"{CHANNELS}/{added['id']}", token=admin).status_code == 204

    assert api.get(CHANNELS, token=admin).json() == []
    again = api.request("DELETE", f"{CHANNELS}/{added['id']}", token=admin)
    assert_problem(again, 404, f"no notification channel '{added['id']}'")


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (
            {"type": "pager", "options": {"url": "https://x.example.test/"}},
            400,
            "unknown channel type 'pager'",
        ),
        ({"type": "webhook"}, 400, "webhook channel needs a url"),
        ({"type": "webhook", "options": {"url": "https://h.test/", "to": "a@b.test"}}, 400, "to"),
        ({"type": "webhook", "options": {"url": "https://h.test/"}, "events": ["exploded"]}, 400, "exploded"),
        ({"type": "email", "options": {"url": "smtp://h.test", "from": "c@d.test"}}, 400, "'to' address"),
        ({"type": "slack", "options": {"url": "https://h.test/x"}, "secret": "k"}, 400, "takes no secret"),
        ({"type": "webhook", "options": {"url": "https://h.test/"}, "colour": "red"}, 422, "unknown field"),
        ({"type": "webhook", "options": {"url": "x" * 2001}}, 422, "options.url"),
        ({"type": "webhook", "options": {"url": "https://h.test/"}, "digest": "yes"}, 422, "digest"),
    ],
)
def test_bad_channels_are_refused_precisely_and_store_nothing(
    api: ApiClient, admin: str, body: dict[str, object], status: int, detail: str
) -> None:
    assert_problem(api.post(CHANNELS, token=admin, json=body), status, detail)
    assert stored_rows(api.platform, "notification_channels") == 0


@pytest.mark.parametrize("scope", ["read", "issue", "revoke"])
def test_a_narrow_token_is_refused_every_notification_call(
    api: ApiClient, admin: str, scope: str, receiver: HttpReceiver
) -> None:
    added = _add(api, admin, type="webhook", team="web", options={"url": receiver.url})
    narrow = api.token("web", scope, ["*.example.test"] if scope != "read" else [])

    for method, path, body in [
        ("POST", CHANNELS, {"type": "webhook", "team": "web", "options": {"url": receiver.url}}),
        ("GET", CHANNELS, None),
        ("DELETE", f"{CHANNELS}/{added['id']}", None),
        ("POST", f"{CHANNELS}/{added['id']}/test", None),
        ("GET", DELIVERIES, None),
    ]:
        response = api.request(method, path, token=narrow, json=body)
        assert_problem(response, 403, f"this token has scope {scope}; admin is required")
    assert stored_rows(api.platform, "notification_channels") == 1
    assert receiver.requests == []  # the refused test sent nothing


def test_openapi_documents_the_notification_paths_with_schemas_and_examples(api: ApiClient) -> None:
    document = api.get("/api/v1/openapi.json").json()
    paths = document["paths"]

    assert set(paths[CHANNELS]) == {"get", "post"}
    assert set(paths[f"{CHANNELS}/{{channel_id}}"]) == {"delete"}
    assert set(paths[f"{CHANNELS}/{{channel_id}}/test"]) == {"post"}
    assert set(paths[DELIVERIES]) == {"get"}
    schemas = document["components"]["schemas"]
    for name in ("ChannelCreate", "ChannelOut", "TestOut", "DeliveryOut"):
        assert schemas[name]["examples"], name
    assert "secret" not in schemas["ChannelOut"]["properties"] or (
        schemas["ChannelOut"]["properties"]["secret"]["type"] == "boolean"
    )
