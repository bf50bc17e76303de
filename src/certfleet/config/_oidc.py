"""The ``[web]`` section of ``config.toml``: single sign-on for the dashboard (``[web.oidc]``).

Example::

    [web.oidc]
    issuer = "https://login.example.com/realms/corp"
    client_id = "certfleet"
    client_secret_file = "/etc/certfleet/oidc-secret"
    provider_name = "Corp SSO"
    # redirect_uri defaults to https://<first server name or bind address>/login/oidc/callback

    [web.oidc.groups]
    "pki-admins" = {role = "admin"}
    "team-payments" = {team = "payments", role = "viewer"}

A group maps to a role (``viewer`` is ``read``; ``issue``, ``revoke``, ``admin`` as for API
tokens) and, unless the role is ``admin``, to the one team the session is narrowed to. A user
none of whose groups is mapped gets no session at all: deny by default."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from certfleet.config._table import only_subtable, parse_table, refuse_unknown
from certfleet.errors import ConfigurationError

__all__ = ["GroupGrant", "OidcSettings", "WebSettings", "parse_web_section"]

# Role names a group may map to: the API token scopes, and "viewer" for read-only people.
_LOOPBACK = ("127.0.0.1", "::1", "localhost")
_ROLES = {"viewer": "read", "read": "read", "issue": "issue", "revoke": "revoke", "admin": "admin"}


@dataclass(frozen=True)
class GroupGrant:
    """What membership of one identity-provider group grants: a token scope value and a team
    (None only for ``admin``, who sees every team)."""

    scope: str
    team: str | None


@dataclass(frozen=True)
class _OidcKeys:
    issuer: str
    client_id: str
    client_secret_file: str
    provider_name: str = "single sign-on"
    redirect_uri: str | None = None
    scopes: tuple[str, ...] = ("openid", "email", "profile", "groups")
    groups_claim: str = "groups"
    # Clock skew accepted on exp, iat and nbf of the ID token (OpenID Connect Core 3.1.3.7).
    leeway_seconds: int = 60
    # How long a provider's discovery document and keys are reused before being fetched again.
    discovery_cache_seconds: int = 3600

    def __post_init__(self) -> None:
        url = urlsplit(self.issuer)
        # Plain http only on loopback (a provider beside certfleet, or in tests).
        if not url.netloc or (
            url.scheme != "https" and not (url.scheme == "http" and url.hostname in _LOOPBACK)
        ):
            raise ConfigurationError("web.oidc.issuer must be an https:// URL (http:// only on loopback)")
        if not self.client_id:
            raise ConfigurationError("web.oidc.client_id must not be empty")
        if "openid" not in self.scopes:
            raise ConfigurationError('web.oidc.scopes must include "openid"')
        if not 0 <= self.leeway_seconds <= 600:
            raise ConfigurationError("web.oidc.leeway_seconds must be an integer from 0 to 600")
        if not 0 <= self.discovery_cache_seconds <= 86400:
            raise ConfigurationError("web.oidc.discovery_cache_seconds must be an integer from 0 to 86400")


@dataclass(frozen=True)
class OidcSettings(_OidcKeys):
    """``[web.oidc]``: one OpenID Connect provider, and ``[web.oidc.groups]``."""

    groups: Mapping[str, GroupGrant] = field(default_factory=dict)

    @property
    def secret_path(self) -> Path:
        return Path(self.client_secret_file)

    def read_client_secret(self) -> str:
        """The client secret, read when needed (never kept in settings, never logged)."""
        try:
            secret = self.secret_path.read_text().strip()
        except OSError as exc:
            raise ConfigurationError(f"web.oidc.client_secret_file cannot be read: {exc.strerror}") from exc
        if not secret:
            raise ConfigurationError("web.oidc.client_secret_file is empty")
        return secret


@dataclass(frozen=True)
class WebSettings:
    """The ``[web]`` section; ``oidc`` is None when single sign-on is not configured."""

    oidc: OidcSettings | None = None


def _grant(name: str, raw: object, where: str) -> GroupGrant:
    section = f"web.oidc.groups.{name}"
    if not isinstance(raw, Mapping):
        raise ConfigurationError(
            f'{where}: [{section}] must be a table like {{team = "payments", role = "viewer"}}'
        )
    refuse_unknown(raw, ("team", "role"), where, section)
    role, team = raw.get("role", "viewer"), raw.get("team")
    if role not in _ROLES:
        raise ConfigurationError(f"{where}: [{section}] role must be one of {', '.join(_ROLES)}")
    if team is not None and (not isinstance(team, str) or not team):
        raise ConfigurationError(f"{where}: [{section}] team must be a non-empty string")
    if role != "admin" and team is None:
        raise ConfigurationError(f"{where}: [{section}] needs a team (only role admin sees every team)")
    return GroupGrant(_ROLES[str(role)], None if role == "admin" else team)


def parse_web_section(raw: object, where: str) -> WebSettings:
    oidc = only_subtable(raw, where, "web", "oidc")
    if oidc is None:
        return WebSettings()
    groups = oidc.get("groups", {})
    if not isinstance(groups, Mapping):
        raise ConfigurationError(f"{where}: [web.oidc.groups] must be a table")
    keys = parse_table(_OidcKeys, {k: v for k, v in oidc.items() if k != "groups"}, where, "web.oidc")
    grants = {str(name): _grant(str(name), value, where) for name, value in groups.items()}
    return WebSettings(
        OidcSettings(**{f: getattr(keys, f) for f in keys.__dataclass_fields__}, groups=grants)
    )
