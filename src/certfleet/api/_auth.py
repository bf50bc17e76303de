"""Bearer-token authentication (RFC 6750) as a FastAPI dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from certfleet.access import Principal
from certfleet.api._ports import Platform
from certfleet.api._problems import InvalidToken
from certfleet.errors import Unauthenticated

__all__ = ["CurrentPrincipal", "get_platform"]

_bearer = HTTPBearer(auto_error=False, description="An API token from 'certfleet token create'.")


def get_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def _principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    # A plain (sync) dependency: FastAPI runs it in the thread pool, off the event loop,
    # because it reads the token from the database.
    if credentials is None:
        raise Unauthenticated("missing bearer token: send 'Authorization: Bearer <token>'")
    try:
        return get_platform(request).tokens.authenticate(credentials.credentials)
    except Unauthenticated as exc:
        raise InvalidToken(exc.detail) from exc


CurrentPrincipal = Annotated[Principal, Depends(_principal)]
