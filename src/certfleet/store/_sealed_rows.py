"""Opening the secrets key against the database, and sealing what an older certfleet left in
plaintext.

The migrations cannot seal: ``certfleet db upgrade`` may run with only a database URL, away
from the data directory that holds the key. So every opening of the platform (``init``,
``serve`` and every other command) first checks the key against the envelopes already stored,
then seals any plaintext row in one short transaction before a service starts: after the
first command on an upgraded data directory no secret is left in plaintext. The common case
(nothing to seal) is one read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from certfleet.errors import IntegrityError
from certfleet.sealing import SecretBox, SecretsKeyError, envelope_key_id, load_or_create_secrets_key
from certfleet.store._acme_eab import eab_key_ref
from certfleet.store._acme_models import AcmeEabKeyRow
from certfleet.store._database import Database
from certfleet.store._notify import seal_channel
from certfleet.store._notify_models import NotificationChannelRow

__all__ = ["StoredSecrets", "open_secret_box", "seal_plaintext_rows", "stored_secrets"]

_EAB = AcmeEabKeyRow
_CHANNEL = NotificationChannelRow


@dataclass(frozen=True)
class StoredSecrets:
    """What the secret columns hold: the ids of the keys that sealed them, and how many rows
    are still plaintext (or, for EAB keys already bound, not yet wiped)."""

    key_ids: frozenset[str]
    plaintext_rows: int


def _eab_key_id(value: bytes) -> str | None:
    return envelope_key_id(value.decode("ascii", "replace"))


def stored_secrets(session: Session) -> StoredSecrets:
    key_ids: set[str] = set()
    plaintext = 0
    for value, account_id in session.execute(
        select(_EAB.hmac_key, _EAB.account_id).where(_EAB.hmac_key.is_not(None))
    ):
        key_id = _eab_key_id(value) if value is not None else None
        if account_id is not None or key_id is None:
            plaintext += 1
        else:
            key_ids.add(key_id)
    for (options_json,) in session.execute(select(_CHANNEL.options_json)):
        key_id = envelope_key_id(options_json)
        if key_id is None:
            plaintext += 1
        else:
            key_ids.add(key_id)
    return StoredSecrets(frozenset(key_ids), plaintext)


def seal_plaintext_rows(session: Session, secrets: SecretBox) -> int:
    """Seal every plaintext EAB key and channel, and wipe bound EAB keys; return the rows
    changed. Each UPDATE names the value it replaces, so two processes starting at once on
    one PostgreSQL database seal each row once."""
    changed = 0
    for kid, value, account_id in session.execute(
        select(_EAB.kid, _EAB.hmac_key, _EAB.account_id).where(_EAB.hmac_key.is_not(None))
    ):
        if value is None or (account_id is None and _eab_key_id(value) is not None):
            continue
        # A bound key is single use: wipe it. An unbound one is sealed.
        new = None if account_id is not None else secrets.seal(value, eab_key_ref(kid)).encode("ascii")
        result = session.execute(
            update(_EAB).where(_EAB.kid == kid, _EAB.hmac_key == value).values(hmac_key=new)
        )
        changed += int(getattr(result, "rowcount", 0) or 0)
    for channel_id, options_json, secret in session.execute(
        select(_CHANNEL.id, _CHANNEL.options_json, _CHANNEL.secret)
    ):
        if envelope_key_id(options_json) is not None:
            continue
        try:
            options: Any = json.loads(options_json)
        except ValueError:
            raise IntegrityError(
                f"notification channel {channel_id!r}: its options are neither sealed nor JSON"
            ) from None
        result = session.execute(
            update(_CHANNEL)
            .where(_CHANNEL.id == channel_id, _CHANNEL.options_json == options_json)
            .values(options_json=seal_channel(secrets, channel_id, options, secret), secret=None)
        )
        changed += int(getattr(result, "rowcount", 0) or 0)
    return changed


def open_secret_box(path: Path, database: Database) -> SecretBox:
    """The secrets key at ``path``, checked against the database, with plaintext rows sealed.

    The key file is created (0600) only while the database holds nothing sealed: a missing or
    different key once something is sealed is a one-line :class:`SecretsKeyError` naming the
    key ids, never a new key that would strand the sealed values.
    """
    with database.session(read_only=True) as session:
        stored = stored_secrets(session)
    ids = ", ".join(sorted(stored.key_ids))
    if stored.key_ids and not path.exists():
        raise SecretsKeyError(
            f"secrets key file {path} is missing, and the database holds secrets sealed with key "
            f"{ids}: restore that file (it travels with the CA keys in keys/)"
        )
    secrets = load_or_create_secrets_key(path, create=True)
    if stored.key_ids - {secrets.key_id}:
        raise SecretsKeyError(
            f"secrets key file {path} is key {secrets.key_id}, but the database holds secrets "
            f"sealed with key {ids}: restore the key file they were sealed with"
        )
    if stored.plaintext_rows:
        _seal_in_place(database, secrets)
    return secrets


def _seal_in_place(database: Database, secrets: SecretBox) -> None:
    sqlite = database.dialect == "sqlite"
    with database.session() as session:
        if sqlite:
            # Zero the plaintext's old cells instead of leaving them in free space.
            session.connection().exec_driver_sql("PRAGMA secure_delete = ON")
        seal_plaintext_rows(session, secrets)
    if sqlite:
        # Copy the rewritten pages over the old ones in the database file and empty the WAL,
        # so no page image with a plaintext secret is left in either file.
        raw = database.engine.raw_connection()
        try:
            raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
