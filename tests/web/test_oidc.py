"""Single sign-on with OpenID Connect: the ID token rules one at a time against a key set made
here, and the whole flow in process against a hand-written provider (an httpx transport) that
checks PKCE and client authentication as a real one does. The real provider (oidc-provider,
driven by Chromium) is in tests/integration/test_oidc_browser.py."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey

from certfleet.app import Platform
from certfleet.config import load_settings
from certfleet.config._oidc import GroupGrant, OidcSettings
from certfleet.errors import ConfigurationError
from certfleet.web._oidc import OidcProvider, map_groups
from certfleet.web._oidc_tokens import IdToken, SignInRefused, pkce_challenge, verify_id_token
from certfleet.web._sessions import SESSION_COOKIE
from certfleet.x509 import KeyType
from tests.conftest import FakeClock, make_platform
from tests.web.conftest import Browser, issue

ISSUER = "https://idp.example.test"
CLIENT = "certfleet"
SECRET = "s3cret with spaces & symbols"
NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)
LEEWAY = dt.timedelta(seconds=60)


def claims(**overrides: Any) -> dict[str, Any]:
    base = {
        "iss": ISSUER,
        "aud": CLIENT,
        "sub": "u-1",
        "email": "alice@example.test",
        "nonce": "n-1",
        "iat": int(NOW.timestamp()),
        "exp": int(NOW.timestamp()) + 300,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


@pytest.fixture(scope="module")
def provider_keys() -> KeySet:
    return KeySet(
        [
            ECKey.generate_key("P-256", parameters={"kid": "ec-1"}),
            RSAKey.generate_key(2048, parameters={"kid": "rsa-1"}),
        ]
    )


def sign(keys: KeySet, payload: Mapping[str, Any], kid: str = "ec-1") -> str:
    alg = "ES256" if kid.startswith("ec") else "RS256"
    return jwt.encode({"alg": alg, "kid": kid}, dict(payload), keys)


def public(keys: KeySet) -> KeySet:
    return KeySet.import_key_set(keys.as_dict(private=False))


def verify(keys: KeySet, token: str, nonce: str = "n-1") -> str:
    return verify_id_token(
        token, public(keys), issuer=ISSUER, client_id=CLIENT, nonce=nonce, now=NOW, leeway=LEEWAY
    ).subject


# --- the ID token rules, each failing alone --------------------------------------------------


@pytest.mark.parametrize("kid", ["ec-1", "rsa-1"])
def test_a_good_id_token_verifies_with_es256_and_rs256(provider_keys: KeySet, kid: str) -> None:
    assert verify(provider_keys, sign(provider_keys, claims(), kid)) == "u-1"


def test_a_token_signed_by_another_key_with_the_same_kid_is_refused(provider_keys: KeySet) -> None:
    forger = KeySet([ECKey.generate_key("P-256", parameters={"kid": "ec-1"})])
    with pytest.raises(SignInRefused, match="signature does not verify"):
        verify(provider_keys, sign(forger, claims()))


def test_an_hs256_token_is_refused(provider_keys: KeySet) -> None:
    secret = OctKey.import_key(SECRET.encode(), parameters={"kid": "ec-1"})
    token = jwt.encode({"alg": "HS256", "kid": "ec-1"}, claims(), secret)
    with pytest.raises(SignInRefused, match="signature"):
        verify(provider_keys, token)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"iss": "https://evil.example.test"}, "comes from issuer"),
        ({"aud": "another-app"}, "issued for another application"),
        ({"aud": [CLIENT, "another-app"]}, "authorized party"),
        ({"aud": [CLIENT, "another-app"], "azp": "another-app"}, "authorized party"),
        ({"exp": int((NOW - dt.timedelta(seconds=61)).timestamp())}, "expired"),
        ({"iat": int((NOW + dt.timedelta(minutes=5)).timestamp())}, "not valid yet"),
        ({"nbf": int((NOW + dt.timedelta(minutes=5)).timestamp())}, "not valid yet"),
        ({"nonce": "n-2"}, "nonce does not match"),
        ({"nonce": None}, "nonce does not match"),
        ({"exp": None}, "lacks exp"),
        ({"sub": None}, "no subject"),
    ],
)
def test_each_rule_refuses_alone(provider_keys: KeySet, overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(SignInRefused, match=message):
        verify(provider_keys, sign(provider_keys, claims(**overrides)))


def test_leeway_accepts_a_token_expired_within_it_and_several_audiences_with_our_azp(
    provider_keys: KeySet,
) -> None:
    recent = claims(exp=int((NOW - dt.timedelta(seconds=30)).timestamp()), aud=[CLIENT, "x"], azp=CLIENT)
    assert verify(provider_keys, sign(provider_keys, recent)) == "u-1"


def test_a_key_id_the_provider_does_not_publish_is_refused(provider_keys: KeySet) -> None:
    other = KeySet([ECKey.generate_key("P-256", parameters={"kid": "ec-9"})])
    with pytest.raises(SignInRefused, match="does not publish"):
        verify(provider_keys, sign(other, claims(), "ec-9"))


# --- a hand-written provider for the in-process flow -----------------------------------------


class FakeProvider:
    """Discovery, keys and a token endpoint that checks client_secret_basic, the code's single
    use, its redirect_uri and PKCE S256 as a real provider does; tests "log in" a user by
    :meth:`approve`, which returns the callback URL a provider would redirect to."""

    def __init__(self, keys: KeySet) -> None:
        self.keys = keys
        self.kid = "ec-1"
        self.jwks_fetches = 0
        self.codes: dict[str, dict[str, Any]] = {}
        self.tamper: dict[str, Any] = {}

    def approve(self, authorize_url: str, user: Mapping[str, Any]) -> str:
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
        assert query["code_challenge_method"] == "S256" and query["response_type"] == "code"
        code = secrets.token_urlsafe(16)
        self.codes[code] = {**query, "user": dict(user)}
        callback = urlsplit(query["redirect_uri"])
        return f"{callback.path}?{urlencode({'code': code, 'state': query['state']})}"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/.well-known/openid-configuration"):
            return httpx.Response(
                200,
                json={
                    "issuer": ISSUER,
                    "authorization_endpoint": f"{ISSUER}/auth",
                    "token_endpoint": f"{ISSUER}/token",
                    "jwks_uri": f"{ISSUER}/jwks",
                },
            )
        if path == "/jwks":
            self.jwks_fetches += 1
            published = [k for k in self.keys.keys if k.kid == self.kid]
            return httpx.Response(200, json=KeySet(published).as_dict(private=False))
        assert path == "/token"
        return self._token(request)

    def _token(self, request: httpx.Request) -> httpx.Response:
        basic = base64.b64decode(request.headers["authorization"].split()[1]).decode()
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        grant = self.codes.pop(form["code"], None)
        if basic != f"{CLIENT}:{SECRET}".replace(" ", "+").replace("&", "%26"):
            return httpx.Response(401, json={"error": "invalid_client"})
        if grant is None or grant["redirect_uri"] != form["redirect_uri"]:
            return httpx.Response(400, json={"error": "invalid_grant", "error_description": "unknown code"})
        verifier = form.get("code_verifier", "")
        if pkce_challenge(verifier) != grant["code_challenge"]:
            return httpx.Response(
                400, json={"error": "invalid_grant", "error_description": "PKCE verification failed"}
            )
        now = int(dt.datetime.now(dt.UTC).timestamp())
        payload = {
            "iss": ISSUER,
            "aud": CLIENT,
            "iat": now,
            "exp": now + 300,
            "nonce": grant["nonce"],
            **grant["user"],
        }
        payload.update(self.tamper)
        return httpx.Response(
            200, json={"id_token": sign(self.keys, payload, self.kid), "token_type": "Bearer"}
        )


PAYMENTS = {"sub": "p-1", "email": "pat@example.test", "groups": ["staff", "team-payments"]}
UNMAPPED = {"sub": "u-9", "email": "una@example.test", "groups": ["staff"]}
ADMIN = {"sub": "a-1", "email": "ada@example.test", "groups": ["pki-admins"]}

CONFIG = f"""
[web.oidc]
issuer = "{ISSUER}"
client_id = "{CLIENT}"
client_secret_file = "{{secret}}"
provider_name = "Example SSO"

[web.oidc.groups]
"pki-admins" = {{role = "admin"}}
"team-payments" = {{team = "payments", role = "viewer"}}
"""


@pytest.fixture
def sso_platform(data_dir: Path, db_url: str) -> Iterator[Platform]:
    secret_file = data_dir / "oidc-secret"
    secret_file.write_text(SECRET + "\n")
    (data_dir / "config.toml").write_text(CONFIG.replace("{secret}", str(secret_file)))
    # The real clock: the fake provider stamps its tokens with the time of day.
    p = make_platform(data_dir, db_url, FakeClock(dt.datetime.now(dt.UTC)))
    p.authorities.initialize("Test", KeyType.EC_P256, actor="test")
    yield p
    p.close()


@pytest.fixture
def idp(provider_keys: KeySet) -> FakeProvider:
    return FakeProvider(provider_keys)


def sso_browser(platform: Platform, idp: Callable[[httpx.Request], httpx.Response]) -> Browser:
    b = Browser(platform)
    app = b.client._transport.app  # type: ignore[attr-defined]
    sso = app.state.dashboard.sso
    sso.provider = OidcProvider(sso.provider.settings, platform.clock, transport=httpx.MockTransport(idp))
    return b


def begin(browser: Browser) -> str:
    started = browser.get("/login/oidc?next=/certificates")
    assert started.status_code == 303, started.text
    return started.headers["location"]


def test_the_sign_in_page_offers_the_provider(sso_platform: Platform, idp: FakeProvider) -> None:
    browser = sso_browser(sso_platform, idp)
    page = browser.get("/login")
    assert "Sign in with Example SSO" in page.text and 'name="token"' in page.text  # tokens stay


def test_a_payments_user_signs_in_and_sees_only_payments(sso_platform: Platform, idp: FakeProvider) -> None:
    ours = issue(sso_platform, "pay.example.test", team="payments")
    theirs = issue(sso_platform, "ops.example.test", team="ops")
    browser = sso_browser(sso_platform, idp)
    authorize = begin(browser)
    query = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith(f"{ISSUER}/auth?") and query["client_id"] == [CLIENT]
    assert len(query["state"][0]) >= 43 and len(query["nonce"][0]) >= 43
    landed = browser.get(idp.approve(authorize, PAYMENTS))
    assert landed.status_code == 200 and 'http-equiv="refresh" content="0;url=/certificates"' in landed.text
    assert SESSION_COOKIE in browser.client.cookies
    page = browser.get("/certificates")
    assert ours.fingerprint_sha256 in page.text and theirs.fingerprint_sha256 not in page.text
    assert "oidc:pat@example.test" in page.text
    assert browser.get("/certificates?team=ops").status_code == 403
    entries = [e for e in sso_platform.audit.entries() if e.action == "web.signed_in"]
    assert entries[-1].actor == "oidc:pat@example.test" and entries[-1].details["team"] == "payments"


def test_a_user_in_no_mapped_group_gets_403_and_no_session(sso_platform: Platform, idp: FakeProvider) -> None:
    browser = sso_browser(sso_platform, idp)
    refused = browser.get(idp.approve(begin(browser), UNMAPPED))
    assert refused.status_code == 403 and "in no group that certfleet maps" in refused.text
    assert SESSION_COOKIE not in browser.client.cookies
    assert browser.get("/").status_code == 303  # still sent to sign in
    refusal = [e for e in sso_platform.audit.entries() if e.action == "web.sign_in_refused"]
    assert [e.actor for e in refusal] == ["oidc:una@example.test"]


def test_an_admin_group_sees_every_team(sso_platform: Platform, idp: FakeProvider) -> None:
    theirs = issue(sso_platform, "ops.example.test", team="ops")
    browser = sso_browser(sso_platform, idp)
    assert browser.get(idp.approve(begin(browser), ADMIN)).status_code == 200
    assert theirs.fingerprint_sha256 in browser.get("/certificates").text


def test_a_replayed_callback_is_refused(sso_platform: Platform, idp: FakeProvider) -> None:
    browser = sso_browser(sso_platform, idp)
    callback = idp.approve(begin(browser), PAYMENTS)
    assert browser.get(callback).status_code == 200
    browser.client.cookies.clear()
    again = browser.get(callback)
    assert again.status_code == 403 and "already used or has expired" in again.text
    assert SESSION_COOKIE not in browser.client.cookies


def test_a_callback_opened_in_another_browser_is_refused(sso_platform: Platform, idp: FakeProvider) -> None:
    victim, attacker = sso_browser(sso_platform, idp), sso_browser(sso_platform, idp)
    callback = idp.approve(begin(attacker), PAYMENTS)
    refused = victim.get(callback)
    assert refused.status_code == 403 and "another browser" in refused.text
    assert SESSION_COOKIE not in victim.client.cookies


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        ({"aud": "another-app"}, "another application"),
        ({"exp": 1_700_000_000, "iat": 1_699_999_000}, "expired"),
    ],
)
def test_a_token_for_another_client_or_expired_opens_no_session(
    sso_platform: Platform, idp: FakeProvider, tamper: dict[str, Any], message: str
) -> None:
    idp.tamper = tamper
    browser = sso_browser(sso_platform, idp)
    refused = browser.get(idp.approve(begin(browser), PAYMENTS))
    assert refused.status_code == 403 and message in refused.text
    assert SESSION_COOKIE not in browser.client.cookies


def test_without_the_pkce_verifier_the_code_is_not_redeemed(
    sso_platform: Platform, idp: FakeProvider
) -> None:
    settings = sso_platform.settings.web.oidc
    assert settings is not None
    provider = OidcProvider(settings, sso_platform.clock, transport=httpx.MockTransport(idp))
    with pytest.raises(SignInRefused, match="no PKCE verifier"):
        provider.redeem("a-code", "", "https://certfleet.test/login/oidc/callback", "n")
    # and a wrong verifier is the provider's refusal, reported as such
    browser = sso_browser(sso_platform, idp)
    callback = idp.approve(begin(browser), PAYMENTS)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    with pytest.raises(SignInRefused, match="PKCE verification failed"):
        provider.redeem(code, "x" * 43, "https://certfleet.test/login/oidc/callback", "n")


def test_rotated_keys_are_fetched_once_more(sso_platform: Platform, idp: FakeProvider) -> None:
    browser = sso_browser(sso_platform, idp)
    assert browser.get(idp.approve(begin(browser), PAYMENTS)).status_code == 200
    assert idp.jwks_fetches == 1
    idp.kid = "rsa-1"  # the provider rotates its signing key
    second = sso_browser(sso_platform, idp)
    second_sso = second.client._transport.app.state.dashboard.sso  # type: ignore[attr-defined]
    second_sso.provider = browser.client._transport.app.state.dashboard.sso.provider  # type: ignore[attr-defined]
    assert second.get(idp.approve(begin(second), PAYMENTS)).status_code == 200
    assert idp.jwks_fetches == 2


# --- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[web.oidc]\nissuer = "http://idp.example.test"\nclient_id = "c"\nclient_secret_file = "/x"',
            "https://",
        ),
        (
            '[web.oidc]\nissuer = "https://i.test"\nclient_id = "c"\nclient_secret_file = "/x"\n'
            'scope = ["openid"]',
            "did you mean scopes",
        ),
        (
            '[web.oidc]\nissuer = "https://i.test"\nclient_id = "c"\nclient_secret_file = "/x"\n'
            '[web.oidc.groups]\n"g" = {role = "viewer"}',
            "needs a team",
        ),
        (
            '[web.oidc]\nissuer = "https://i.test"\nclient_id = "c"\nclient_secret_file = "/x"\n'
            '[web.oidc.groups]\n"g" = {team = "t", role = "owner"}',
            "role must be one of",
        ),
    ],
)
def test_bad_oidc_configuration_is_refused_precisely(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "config.toml").write_text(text)
    with pytest.raises(ConfigurationError, match=message):
        load_settings({}, data_dir=tmp_path)


def test_the_client_secret_is_read_from_its_file_and_never_kept_in_settings(tmp_path: Path) -> None:
    (tmp_path / "s").write_text("top-secret\n")
    (tmp_path / "config.toml").write_text(
        f'[web.oidc]\nissuer = "https://i.test"\nclient_id = "c"\nclient_secret_file = "{tmp_path / "s"}"\n'
    )
    oidc = load_settings({}, data_dir=tmp_path).web.oidc
    assert oidc is not None and oidc.read_client_secret() == "top-secret"
    assert "top-secret" not in repr(oidc)


@pytest.mark.parametrize(
    "target", ["//evil.example/x", "/\t/evil.example/x", "/\n/evil.example", "https://evil.example"]
)
def test_next_after_single_sign_on_never_leaves_the_site(
    sso_platform: Platform, idp: FakeProvider, target: str
) -> None:
    browser = sso_browser(sso_platform, idp)
    started = browser.get("/login/oidc", params={"next": target})
    landed = browser.get(idp.approve(started.headers["location"], PAYMENTS))
    assert landed.status_code == 200 and 'content="0;url=/"' in landed.text


# --- groups to a principal ------------------------------------------------------------------

GRANTS = {
    "pki-admins": GroupGrant("admin", None),
    "team-payments": GroupGrant("read", "payments"),
    "payments-operators": GroupGrant("revoke", "payments"),
    "team-ops": GroupGrant("read", "ops"),
}


def person(*groups: str) -> IdToken:
    return IdToken("s-1", "p@example.test", {"sub": "s-1", "groups": list(groups)})


@pytest.mark.parametrize(
    ("groups", "team", "scope"),
    [
        (("staff", "team-payments"), "payments", "read"),
        (("team-payments", "payments-operators"), "payments", "revoke"),
        (("team-ops", "pki-admins"), None, "admin"),
    ],
)
def test_groups_map_to_one_team_and_the_strongest_role(
    groups: tuple[str, ...], team: str | None, scope: str
) -> None:
    principal = map_groups(person(*groups), GRANTS, "groups")
    assert (principal.name, principal.team, principal.scope.value) == ("oidc:p@example.test", team, scope)


@pytest.mark.parametrize(
    ("groups", "message"),
    [((), "in no group"), (("staff",), "in no group"), (("team-payments", "team-ops"), "several teams")],
)
def test_groups_that_map_to_nothing_or_to_two_teams_are_refused(
    groups: tuple[str, ...], message: str
) -> None:
    with pytest.raises(SignInRefused, match=message):
        map_groups(person(*groups), GRANTS, "groups")


def test_a_discovery_document_for_another_issuer_is_refused(provider_keys: KeySet, tmp_path: Path) -> None:
    (tmp_path / "s").write_text(SECRET)
    settings = OidcSettings(ISSUER + "/realm", CLIENT, str(tmp_path / "s"))
    provider = OidcProvider(
        settings, FakeClock(NOW), transport=httpx.MockTransport(FakeProvider(provider_keys))
    )
    with pytest.raises(SignInRefused, match="discovery document names issuer"):
        provider.authorization_url("https://certfleet.test/cb", "s", "n", "c")


def test_an_unreachable_provider_is_a_502_page_not_a_trace(sso_platform: Platform) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    browser = sso_browser(sso_platform, down)
    page = browser.get("/login/oidc")
    assert page.status_code == 502 and "identity provider is unreachable (discovery document)" in page.text
