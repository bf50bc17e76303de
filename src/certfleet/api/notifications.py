"""Notification channels over HTTP (admin): add one, list them (no secrets), send a test
notice, and read the newest deliveries. The same
:class:`~certfleet.services.notifications.Notifications` calls as ``certfleet notify``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from certfleet.api._admin import StrictBody, require_admin
from certfleet.api._auth import CurrentPrincipal, get_platform
from certfleet.api._ports import Platform
from certfleet.api._problems import PROBLEM_RESPONSES
from certfleet.services.notifications import MAX_DELIVERIES, listed

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"], responses=PROBLEM_RESPONSES)
PlatformDep = Annotated[Platform, Depends(get_platform)]

_OptionValue = Annotated[str, Field(max_length=2000)]
_CHANNEL_EXAMPLE: dict[str, Any] = {
    "id": "9c2e4b1a7f3d5e60",
    "name": "payments-hook",
    "team": "payments",
    "type": "webhook",
    "secret": True,
    "events": ["expiring", "revoked"],
    "digest": False,
    "enabled": True,
    "created_at": "2026-12-03T10:00:00Z",
    "target": "https://hooks.example.com/certfleet",
}


class ChannelCreate(StrictBody):
    type: str = Field(max_length=20, description="webhook, email or slack.")
    team: str | None = Field(default=None, max_length=100, description="Null: every team's events.")
    options: dict[str, _OptionValue | list[_OptionValue] | None] = Field(
        default_factory=dict,
        max_length=10,
        description="url (webhook, Slack, or smtp://[user@]host[:port] for email); for email also "
        "to (a list), from, and ca_file (a path on the server).",
    )
    secret: str | None = Field(
        default=None, max_length=4096, description="Webhook HMAC key, or the SMTP password; stored sealed."
    )
    events: list[Annotated[str, Field(max_length=50)]] = Field(
        default_factory=list, max_length=50, description="Only these event kinds (default: all)."
    )
    digest: bool = Field(default=False, description="Send expiring notices as one daily digest.")
    name: str | None = Field(default=None, max_length=100, description="A label for listings.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "webhook",
                    "team": "payments",
                    "options": {"url": "https://hooks.example.com/certfleet"},
                    "secret": "<hmac key>",
                    "events": ["expiring", "revoked"],
                    "name": "payments-hook",
                }
            ]
        }
    )


class ChannelOut(BaseModel):
    """A channel as ``certfleet notify channel list --format json`` shows it: whether a secret
    is set, never the secret, and only where it sends (a Slack URL is itself a credential)."""

    id: str
    name: str
    team: str | None
    type: str
    secret: bool
    events: list[str]
    digest: bool
    enabled: bool
    created_at: str | None
    target: str

    model_config = ConfigDict(json_schema_extra={"examples": [_CHANNEL_EXAMPLE]})


class TestOut(BaseModel):
    ok: bool = Field(description="False when the receiver refused or could not be reached.")
    detail: str = Field(description="What the receiver answered, or why the send failed.")

    model_config = ConfigDict(json_schema_extra={"examples": [{"ok": True, "detail": "HTTP 204"}]})


class DeliveryOut(BaseModel):
    id: int
    event_id: int
    event: str
    subject: str
    channel: str
    state: str
    attempts: int
    next_attempt_at: str | None
    last_error: str | None
    delivered_at: str | None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 12,
                    "event_id": 7,
                    "event": "expiring",
                    "subject": "www.example.com",
                    "channel": "9c2e4b1a7f3d5e60",
                    "state": "delivered",
                    "attempts": 1,
                    "next_attempt_at": None,
                    "last_error": None,
                    "delivered_at": "2026-12-03T10:00:05Z",
                }
            ]
        }
    )


@router.post("/channels", status_code=201, response_model=ChannelOut, summary="Add a notification channel")
async def add_channel(
    body: ChannelCreate, principal: CurrentPrincipal, platform: PlatformDep, response: Response
) -> ChannelOut:
    """Add a channel (admin) for one team's events or every team's."""
    require_admin(principal)
    channel = await run_in_threadpool(
        lambda: platform.notifications.add_channel(
            type_name=body.type,
            options=body.options,
            team=body.team,
            actor=principal.name,
            secret=body.secret,
            name=body.name,
            events=tuple(body.events),
            digest=body.digest,
        )
    )
    response.headers["Location"] = f"{router.prefix}/channels/{channel.id}"
    return ChannelOut.model_validate(listed(channel))


@router.get("/channels", response_model=list[ChannelOut], summary="List notification channels")
async def list_channels(
    principal: CurrentPrincipal,
    platform: PlatformDep,
    team: Annotated[str | None, Query(max_length=100, description="Only this team's channels.")] = None,
) -> list[ChannelOut]:
    """Channels (admin), without their secrets."""
    require_admin(principal)
    rows = await run_in_threadpool(platform.notifications.channel_listing, team)
    return [ChannelOut.model_validate(r) for r in rows]


@router.delete(
    "/channels/{channel_id}",
    status_code=204,
    response_class=Response,
    summary="Remove a notification channel",
)
async def remove_channel(
    channel_id: Annotated[str, Path(max_length=64)], principal: CurrentPrincipal, platform: PlatformDep
) -> Response:
    """Remove a channel and its undelivered notices (admin); 404 for no such channel."""
    require_admin(principal)
    await run_in_threadpool(lambda: platform.notifications.remove_channel(channel_id, actor=principal.name))
    return Response(status_code=204)


@router.post(
    "/channels/{channel_id}/test", response_model=TestOut, summary="Send a test notice through a channel"
)
async def test_channel(
    channel_id: Annotated[str, Path(max_length=64)], principal: CurrentPrincipal, platform: PlatformDep
) -> TestOut:
    """Send a test notice now (admin) and say what the receiver answered. A receiver's
    refusal is an answer (``ok: false``), not an error of this request."""
    require_admin(principal)
    outcome = await run_in_threadpool(platform.notifications.test_channel, channel_id)
    return TestOut.model_validate(outcome.to_dict())


@router.get("/deliveries", response_model=list[DeliveryOut], summary="List notification deliveries")
async def list_deliveries(
    principal: CurrentPrincipal,
    platform: PlatformDep,
    state: Annotated[
        str | None, Query(max_length=20, description="pending, delivered, failed, held or digested.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_DELIVERIES, description="The newest N.")] = 100,
) -> list[DeliveryOut]:
    """The newest deliveries and their state (admin)."""
    require_admin(principal)
    found = await run_in_threadpool(platform.notifications.deliveries, state, limit)
    return [DeliveryOut.model_validate(d.to_dict()) for d in found]
