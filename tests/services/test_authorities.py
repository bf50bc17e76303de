"""Creating the CA hierarchy: once, atomically, with its keys encrypted beside the database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from certfleet.app import Platform
from certfleet.ca import CaUrls
from certfleet.ca.keys import SoftwareKeyBackend
from certfleet.errors import ConfigurationError, Conflict, InvalidInput
from certfleet.services import AuthorityService
from certfleet.x509 import KeyType
from tests.conftest import FakeClock
from tests.services.snapshot import audit_actions, table_counts


def _key_files(platform: Platform) -> dict[str, bytes]:
    """The CA key files (keys/ also holds the secrets key, which is no CA's)."""
    keys = platform.settings.data_dir.keys
    return {p.name: p.read_bytes() for p in keys.glob("*.key.pem")} if keys.exists() else {}


def test_initialize_stores_root_and_issuing_ca_and_audits_both(bare_platform: Platform) -> None:
    root, inter = bare_platform.authorities.initialize("Example", KeyType.EC_P256, actor="admin")
    hierarchy = bare_platform.authorities.hierarchy()
    assert [(ca.id, ca.role, ca.parent_id) for ca in hierarchy] == [
        (root.id, "root", None),
        (inter.id, "intermediate", root.id),
    ]
    assert bare_platform.authorities.root().certificate == root.certificate
    assert bare_platform.authorities.issuing_authority().issuer.id == inter.id
    assert sorted(_key_files(bare_platform)) == sorted(
        [f"{root.key_ref}.key.pem", f"{inter.key_ref}.key.pem"]
    )
    created = [e for e in bare_platform.audit.entries() if e.action == "ca.created"]
    assert [(e.actor, e.subject, e.details["role"], e.details["key_type"]) for e in created] == [
        ("admin", root.id, "root", "ec-p256"),
        ("admin", inter.id, "intermediate", "ec-p256"),
    ]


def test_second_initialize_refuses_and_changes_nothing(platform: Platform) -> None:
    hierarchy = platform.authorities.hierarchy()
    keys = _key_files(platform)
    counts = table_counts(platform.database)
    audit = audit_actions(platform.database)
    with pytest.raises(Conflict, match="already has a CA"):
        platform.authorities.initialize("Other", KeyType.RSA_2048, actor="admin")
    assert platform.authorities.hierarchy() == hierarchy
    assert _key_files(platform) == keys
    assert table_counts(platform.database) == counts
    assert audit_actions(platform.database) == audit


@pytest.mark.parametrize("name", ["", "   ", "x" * 51])
def test_ca_name_must_be_1_to_50_characters(bare_platform: Platform, name: str) -> None:
    with pytest.raises(InvalidInput, match="CA name must be 1 to 50 characters"):
        bare_platform.authorities.initialize(name, KeyType.EC_P256, actor="admin")
    assert not bare_platform.authorities.is_initialized()
    assert _key_files(bare_platform) == {}


def test_no_issuing_authority_before_init(bare_platform: Platform) -> None:
    with pytest.raises(ConfigurationError, match="run 'certfleet init' first"):
        bare_platform.authorities.issuing_authority()
    with pytest.raises(ConfigurationError, match="run 'certfleet init' first"):
        bare_platform.authorities.root()


class _FailingCas:
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def add(self, ca: object) -> None:
        raise OSError("database went away")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_failed_initialize_leaves_no_key_files(
    bare_platform: Platform, clock: FakeClock, tmp_path: Path
) -> None:
    @contextmanager
    def failing_unit_of_work(*, read_only: bool = False) -> Iterator[Any]:
        with bare_platform.store.unit_of_work(read_only=read_only) as uow:
            uow.cas = _FailingCas(uow.cas)  # type: ignore[misc]
            yield uow

    keys_dir = tmp_path / "keys"
    service = AuthorityService(
        failing_unit_of_work,
        SoftwareKeyBackend(keys_dir, b"passphrase"),
        CaUrls(bare_platform.settings.public_base_url),
        clock,
    )
    with pytest.raises(OSError, match="database went away"):
        service.initialize("Example", KeyType.EC_P256, actor="admin")
    assert list(keys_dir.iterdir()) == []
    assert not bare_platform.authorities.is_initialized()
