"""Secrets at rest: EAB HMAC keys, webhook secrets, SMTP passwords and Slack webhook URLs
never reach the database in plaintext, still work end to end, cannot be moved between rows,
and a database written by an older certfleet is sealed the first time the platform opens."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text

import certfleet.store as store_package
from certfleet.app import Platform
from certfleet.lifecycle.notifications import sign
from certfleet.sealing import UnsealError
from certfleet.store import Database
from certfleet.x509 import KeyType
from tests.conftest import Cli, FakeClock, make_platform
from tests.lifecycle.notifications.receivers import HttpReceiver, SmtpServer, server_tls
from tests.services.snapshot import private_database, rows


def _stored_values(database: Database) -> Iterator[tuple[str, bytes]]:
    """Every value of every row of every table, as bytes."""
    with database.engine.connect() as conn:
        for table in inspect(database.engine).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        yield table, bytes(value)
                    elif value is not None:
                        yield table, str(value).encode()


def _assert_nowhere(database: Database, plaintexts: list[bytes], files: Sequence[Path] = ()) -> None:
    for table, value in _stored_values(database):
        for plaintext in plaintexts:
            assert plaintext not in value, f"{plaintext!r} stored in plaintext in {table}"
    for path in files:
        if path.exists():
            content = path.read_bytes()
            for plaintext in plaintexts:
                assert plaintext not in content, f"{plaintext!r} left in {path.name}"


def _sqlite_files(platform: Platform) -> list[Path]:
    if platform.database.dialect != "sqlite":
        return []
    db = platform.settings.data_dir.database
    return [db, db.with_name(db.name + "-wal")]


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    server = HttpReceiver()
    yield server
    server.close()


def test_no_secret_is_stored_in_plaintext_and_each_still_works(
    platform: Platform, receiver: HttpReceiver, tmp_path: Path
) -> None:
    # Given an EAB key, a signed webhook, an SMTP channel with a password and a Slack channel
    tls, root = server_tls(platform, tmp_path)
    password = f"smtp-{secrets.token_hex(12)}"
    smtp = SmtpServer(tls, users={b"notify": password.encode()})
    try:
        minted = platform.acme.create_eab_key("web", [], actor="test")
        webhook_secret = f"whsec-{secrets.token_hex(12)}"
        slack_token = secrets.token_hex(12)
        notify = platform.notifications
        webhook = notify.add_channel(
            type_name="webhook", options={"url": receiver.url}, team="a", actor="t", secret=webhook_secret
        )
        email = notify.add_channel(
            type_name="email",
            options={
                "url": f"smtp://notify@127.0.0.1:{smtp.port}",
                "to": ["ops@example.test"],
                "from": "certfleet@example.test",
                "ca_file": str(root),
            },
            team="a",
            actor="t",
            secret=password,
        )
        slack_url = f"{receiver.url}/services/T0/B0/{slack_token}"
        slack = notify.add_channel(type_name="slack", options={"url": slack_url}, team="a", actor="t")

        # Then no row of any table holds one of them, nor does the SQLite file or its WAL
        hmac_key = minted.record.hmac_key
        assert hmac_key is not None
        plaintexts = [
            hmac_key,
            minted.hmac_key_b64.encode(),
            webhook_secret.encode(),
            password.encode(),
            slack_token.encode(),
        ]
        _assert_nowhere(platform.database, plaintexts, _sqlite_files(platform))
        assert rows(platform.database, "SELECT secret FROM notification_channels") == [(None,)] * 3

        # And each still works: the webhook signs with its secret, the mail logs in, Slack posts
        assert notify.test_channel(webhook.id).ok
        (signed,) = receiver.requests
        assert signed.headers["x-certfleet-signature"] == sign(webhook_secret, signed.body)
        assert notify.test_channel(email.id).ok
        (mail,) = smtp.mails
        assert mail.tls and mail.login == b"notify"
        assert notify.test_channel(slack.id).ok
        assert receiver.requests[-1].path.endswith(slack_token)
        with platform.store.unit_of_work(read_only=True) as uow:
            found = uow.acme.eab_keys.get(minted.record.kid)
        assert found is not None and found.hmac_key == hmac_key
    finally:
        smtp.close()


def test_a_sealed_value_moved_to_another_row_does_not_open(platform: Platform) -> None:
    notify = platform.notifications
    mine = notify.add_channel(
        type_name="webhook", options={"url": "https://a.example.test/h"}, team="a", actor="t", secret="a"
    )
    theirs = notify.add_channel(
        type_name="webhook", options={"url": "https://b.example.test/h"}, team="b", actor="t", secret="b"
    )
    first = platform.acme.create_eab_key("web", [], actor="t").record.kid
    second = platform.acme.create_eab_key("ops", [], actor="t").record.kid
    with platform.database.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE notification_channels SET options_json = "
                "(SELECT options_json FROM notification_channels WHERE id = :src) WHERE id = :dst"
            ),
            {"src": theirs.id, "dst": mine.id},
        )
        conn.execute(
            text(
                "UPDATE acme_eab_keys SET hmac_key = "
                "(SELECT hmac_key FROM acme_eab_keys WHERE kid = :src) WHERE kid = :dst"
            ),
            {"src": second, "dst": first},
        )
    with pytest.raises(UnsealError, match="moved from another row"):
        notify.channel(mine.id)
    assert notify.channel(theirs.id).secret == "b"
    with platform.store.unit_of_work(read_only=True) as uow, pytest.raises(UnsealError):
        uow.acme.eab_keys.get(first)


def test_the_secrets_key_file_is_0600_beside_the_ca_keys(platform: Platform) -> None:
    path = platform.settings.data_dir.keys / "secrets.key"
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_missing_or_wrong_secrets_key_is_one_line_at_start(cli: Cli, data_dir: Path) -> None:
    assert cli("init").exit_code == 0
    added = cli("notify", "channel", "add", "--type", "slack", "--url", "https://hooks.example.test/x/y")
    assert added.exit_code == 0, added.stderr
    key_file = data_dir / "keys" / "secrets.key"
    original = key_file.read_bytes()

    key_file.unlink()
    missing = cli("notify", "channel", "list")
    assert missing.exit_code == 2
    assert "secrets.key is missing, and the database holds secrets sealed with key" in missing.stderr
    assert "Traceback" not in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
    assert not key_file.exists()  # never a fresh key that would strand the sealed values

    key_file.write_bytes(base64.urlsafe_b64encode(secrets.token_bytes(32)) + b"\n")
    key_file.chmod(0o600)
    wrong = cli("notify", "channel", "list")
    assert wrong.exit_code == 2
    assert "but the database holds secrets sealed with key" in wrong.stderr
    assert "Traceback" not in wrong.stderr and len(wrong.stderr.strip().splitlines()) == 1

    key_file.write_bytes(original)
    assert cli("notify", "channel", "list").exit_code == 0


def _alembic(database: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(store_package.__file__).parent / "migrations"))
    config.attributes["engine"] = database.engine
    return config


def _legacy_rows(database: Database, now: Any, hmac_unbound: bytes, hmac_bound: bytes) -> None:
    """What certfleet wrote before sealing: raw HMAC keys (one already bound) and plaintext
    channel options and secrets."""
    with database.engine.begin() as conn:
        for kid, key, account in (("kid-unbound", hmac_unbound, None), ("kid-bound", hmac_bound, "acct1")):
            conn.execute(
                text(
                    "INSERT INTO acme_eab_keys (kid, hmac_key, team, allow_names_json, description, "
                    "created_at, account_id, bound_at) "
                    "VALUES (:kid, :key, 'web', '[]', '', :now, :acct, :bound)"
                ),
                {"kid": kid, "key": key, "now": now, "acct": account, "bound": now if account else None},
            )
        for channel_id, kind, options, secret in (
            ("c-webhook", "webhook", {"url": "https://hooks.example.test/h"}, "legacy-webhook-secret"),
            (
                "c-slack",
                "slack",
                {"url": "https://hooks.slack.example.test/services/legacy-slack-token"},
                None,
            ),
        ):
            conn.execute(
                text(
                    "INSERT INTO notification_channels (id, name, team, type, options_json, secret, "
                    "events_json, digest, enabled, created_at) VALUES (:id, :id, NULL, :type, :options, "
                    ":secret, '[]', false, true, :now)"
                ),
                {
                    "id": channel_id,
                    "type": kind,
                    "options": json.dumps(options),
                    "secret": secret,
                    "now": now,
                },
            )


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_database_with_plaintext_secrets_is_sealed_on_first_open(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> None:
    pg = request.getfixturevalue("pg_database_url") if kind == "postgresql" else None
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    with private_database(kind, data, pg) as url:
        # Given a data directory and database from before sealing: the schema before 0014,
        # plaintext rows, and no secrets key
        first = make_platform(data, url, clock)
        first.authorities.initialize("Test", KeyType.EC_P256, actor="test")
        first.close()
        (data / "keys" / "secrets.key").unlink()
        database = Database(url)
        command.downgrade(_alembic(database), "0014_acme_eab_single_use-1")
        unbound, bound = secrets.token_bytes(32), secrets.token_bytes(32)
        _legacy_rows(database, clock.now(), unbound, bound)
        database.dispose()

        # When the platform opens (as serve and init do)
        upgraded = make_platform(data, url, clock)
        try:
            # Then nothing is left in plaintext, the bound key is wiped, the rest still opens
            plaintexts = [unbound, bound, b"legacy-webhook-secret", b"legacy-slack-token"]
            files = [data / "certfleet.db", data / "certfleet.db-wal"] if kind == "sqlite" else []
            _assert_nowhere(upgraded.database, plaintexts, files)
            assert (data / "keys" / "secrets.key").stat().st_mode & 0o777 == 0o600
            with upgraded.store.unit_of_work(read_only=True) as uow:
                still = uow.acme.eab_keys.get("kid-unbound")
                used = uow.acme.eab_keys.get("kid-bound")
            assert still is not None and still.hmac_key == unbound
            assert used is not None and used.hmac_key is None
            assert rows(upgraded.database, "SELECT hmac_key FROM acme_eab_keys WHERE kid = 'kid-bound'") == [
                (None,)
            ]
            webhook = upgraded.notifications.channel("c-webhook")
            assert webhook.secret == "legacy-webhook-secret"
            assert webhook.options == {"url": "https://hooks.example.test/h"}
            assert upgraded.notifications.channel("c-slack").options["url"].endswith("legacy-slack-token")
        finally:
            upgraded.close()
