from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from certfleet.access import Principal
from certfleet.app import Platform
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
    if credentials is None:
        raise Unauthenticated("missing bearer token")
    return get_platform(request).tokens.authenticate(credentials.credentials)


CurrentPrincipal = Annotated[Principal, Depends(_principal)]
