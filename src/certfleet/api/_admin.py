"""What the operator endpoints (policies, tokens, notification channels, agent administration)
share: strict request bodies and the admin check that stands for what the CLI in local mode
is (an admin beside the data)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from certfleet.access import Principal, Scope

__all__ = ["StrictBody", "require_admin"]


class StrictBody(BaseModel):
    """Unknown fields are refused and types are strict: ``"true"`` is not a boolean."""

    model_config = ConfigDict(extra="forbid", strict=True)


def require_admin(principal: Principal) -> None:
    """403 unless the token has the admin scope (the message names the scope it has)."""
    principal.require(Scope.ADMIN)
