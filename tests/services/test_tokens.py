"""API tokens: shown once, stored as a hash, revocable, every change audited."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from certfleet.access import Scope
from certfleet.app import Platform
from certfleet.errors import InvalidInput, NotFound, Unauthenticated
from tests.conftest import FakeClock, make_platform
from tests.services.snapshot import rows


def test_token_is_stored_as_a_hash_and_authenticates(bare_platform: Platform) -> None:
    minted = bare_platform.tokens.create("web", Scope.ISSUE, ["*.web.example.com"], actor="admin")
    token_id, secret = minted.token.removeprefix("cf_").split("_", 1)
    assert token_id == minted.record.id
    stored = rows(bare_platform.database, "SELECT id, secret_hash, team, scope FROM api_tokens")
    assert stored == [(token_id, hashlib.sha256(secret.encode()).hexdigest(), "web", "issue")]
    assert secret not in repr(stored)
    principal = bare_platform.tokens.authenticate(minted.token)
    assert (principal.team, principal.scope) == ("web", Scope.ISSUE)


def test_revoked_or_wrong_tokens_do_not_authenticate(bare_platform: Platform) -> None:
    minted = bare_platform.tokens.create("web", Scope.READ, [], actor="admin")
    with pytest.raises(Unauthenticated):
        bare_platform.tokens.authenticate(minted.token[:-2] + "xx")
    with pytest.raises(Unauthenticated, match="malformed"):
        bare_platform.tokens.authenticate("bearer-junk")
    bare_platform.tokens.revoke(minted.record.id, actor="admin")
    with pytest.raises(Unauthenticated, match="invalid or revoked"):
        bare_platform.tokens.authenticate(minted.token)
    with pytest.raises(NotFound, match="no active token"):
        bare_platform.tokens.revoke(minted.record.id, actor="admin")


def test_token_creation_and_revocation_are_audited(bare_platform: Platform) -> None:
    minted = bare_platform.tokens.create("db", Scope.ISSUE, ["**.db.example.com"], actor="admin")
    bare_platform.tokens.revoke(minted.record.id, actor="security")
    entries = [(e.actor, e.action, e.subject) for e in bare_platform.audit.entries()]
    assert entries == [
        ("admin", "token.created", minted.record.id),
        ("security", "token.revoked", minted.record.id),
    ]
    created = next(iter(bare_platform.audit.entries()))
    assert created.details == {"team": "db", "scope": "issue", "allow_names": ["**.db.example.com"]}
    assert minted.token.split("_", 2)[2] not in str(list(bare_platform.audit.entries()))


def test_issue_token_needs_a_pattern(bare_platform: Platform) -> None:
    with pytest.raises(InvalidInput, match="needs at least one --allow-names"):
        bare_platform.tokens.create("web", Scope.ISSUE, [], actor="admin")
    assert rows(bare_platform.database, "SELECT count(*) FROM api_tokens") == [(0,)]
    assert list(bare_platform.audit.entries()) == []


def test_the_first_admin_token_is_minted_once_and_never_after_any_token(bare_platform: Platform) -> None:
    first = bare_platform.tokens.create_first_admin(actor="system:serve")
    assert first is not None
    principal = bare_platform.tokens.authenticate(first.token)
    assert (principal.team, principal.scope) == ("admin", Scope.ADMIN)
    assert bare_platform.tokens.create_first_admin(actor="system:serve") is None
    bare_platform.tokens.revoke(first.record.id, actor="admin")
    assert bare_platform.tokens.create_first_admin(actor="system:serve") is None  # revoked ones count
    assert len(bare_platform.tokens.list()) == 1


def test_no_first_admin_token_once_an_operator_made_one(bare_platform: Platform) -> None:
    bare_platform.tokens.create("web", Scope.READ, [], actor="admin")
    assert bare_platform.tokens.create_first_admin(actor="system:serve") is None


def test_a_token_look_up_runs_no_transaction(bare_platform: Platform) -> None:
    # Every authenticated REST request looks its token up: one statement, no BEGIN/ROLLBACK
    # (an ORM session per request cost about 1 ms of CPU, a quarter of an issuance's)
    minted = bare_platform.tokens.create("web", Scope.READ, ["*.web.example.com"], actor="admin")
    begun: list[Any] = []

    def record(conn: Any) -> None:
        begun.append(conn)

    event.listen(bare_platform.database.engine, "begin", record)
    try:
        principal = bare_platform.tokens.authenticate(minted.token)
    finally:
        event.remove(bare_platform.database.engine, "begin", record)
    assert begun == []
    assert (principal.team, principal.scope, [p.text for p in principal.allow_names]) == (
        "web",
        Scope.READ,
        ["*.web.example.com"],
    )


def test_a_revocation_by_another_process_refuses_the_next_request(
    bare_platform: Platform, tmp_path: Path, db_url: str, clock: FakeClock
) -> None:
    # Given a token that authenticated in this process
    minted = bare_platform.tokens.create("web", Scope.READ, [], actor="admin")
    bare_platform.tokens.authenticate(minted.token)
    # When another platform on the same database (another worker or node) revokes it
    other_dir = tmp_path / "other"
    other_dir.mkdir(mode=0o700)
    other = make_platform(other_dir, db_url, clock)
    try:
        other.tokens.revoke(minted.record.id, actor="security")
        # Then this process refuses it at once, and accepts a token the other one created
        with pytest.raises(Unauthenticated, match="invalid or revoked"):
            bare_platform.tokens.authenticate(minted.token)
        fresh = other.tokens.create("db", Scope.READ, [], actor="admin")
    finally:
        other.close()
    assert bare_platform.tokens.authenticate(fresh.token).team == "db"
