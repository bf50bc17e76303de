"""EST credentials in the store: the per-request reader (one DBAPI statement) returns what
the repository stored, revocation included, on SQLite and PostgreSQL."""

from __future__ import annotations

from certfleet.app import Platform
from certfleet.store._est import SqlEstCredentialReader


def test_the_reader_returns_the_stored_credential_and_sees_its_revocation_at_once(platform: Platform) -> None:
    minted = platform.est.create_credential(
        "iot", profile="tls-client", names=["*.iot.example.test"], actor="t"
    )
    reader = SqlEstCredentialReader(platform.database)
    assert reader.get(minted.record.id) == minted.record
    assert reader.get("000000000000") is None
    platform.est.revoke_credential(minted.record.username, actor="t")
    revoked = reader.get(minted.record.id)
    assert revoked is not None and revoked.revoked_at == platform.clock.now()
    assert [c.revoked_at for c in platform.est.list_credentials()] == [revoked.revoked_at]
