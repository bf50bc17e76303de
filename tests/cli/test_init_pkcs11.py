"""`certfleet init --key-backend pkcs11`: CA keys made in a SoftHSM2 token, and the refusals."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from certfleet.app import open_platform
from certfleet.config import load_settings
from tests.ca.keys.test_pkcs11 import MODULE, PIN, init_token, token_private_keys
from tests.conftest import Cli

pytestmark = pytest.mark.skipif(not MODULE.exists(), reason="SoftHSM2 (Debian softhsm2) is not installed")

LABEL = "cli-init"


@pytest.fixture
def pin_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    env = init_token(tmp_path, LABEL)
    monkeypatch.setenv("SOFTHSM2_CONF", env["SOFTHSM2_CONF"])
    path = tmp_path / "pin"
    path.write_text(PIN + "\n")
    path.chmod(0o600)
    return path


def _pkcs11(pin_file: Path, *extra: str) -> tuple[str, ...]:
    return (
        "init",
        "--key-backend",
        "pkcs11",
        "--pkcs11-module",
        str(MODULE),
        "--token-label",
        LABEL,
        "--pin-file",
        str(pin_file),
        *extra,
    )


def test_init_makes_the_ca_keys_in_the_token(cli: Cli, pin_file: Path) -> None:
    result = cli(*_pkcs11(pin_file))
    assert result.exit_code == 0, result.stderr
    assert "CA keys:        pkcs11" in result.stdout
    # config.toml names the token and the PIN file, never the PIN
    config_text = (cli.data_dir / "config.toml").read_text()
    assert tomllib.loads(config_text)["keys"]["token_label"] == LABEL
    assert PIN not in config_text
    # The database records only a reference; the keys are in the token, not on disk
    settings = load_settings({}, data_dir=cli.data_dir, database_url=cli.db_url)
    platform = open_platform(settings)
    try:
        cas = platform.authorities.hierarchy()
    finally:
        platform.close()
    assert {ca.key_backend for ca in cas} == {"pkcs11"}
    listing = token_private_keys(LABEL)
    for ca in cas:
        assert f"label:      {ca.key_ref}" in listing
    assert listing.count("never extractable") == listing.count("Private Key Object") >= 2
    assert not list(cli.data_dir.glob("keys/*.key.pem"))
    if cli.db_url.startswith("sqlite"):
        assert PIN.encode() not in (cli.data_dir / "certfleet.db").read_bytes()


def test_a_retried_init_after_the_token_was_away_works(cli: Cli, pin_file: Path) -> None:
    tokens = pin_file.parent / "tokens"
    tokens.rename(tokens.with_name("away"))
    failed = cli(*_pkcs11(pin_file))
    assert failed.exit_code != 0
    assert failed.stderr.count("\n") == 1 and LABEL in failed.stderr
    assert "Traceback" not in failed.stderr
    tokens.with_name("away").rename(tokens)
    retried = cli(*_pkcs11(pin_file))
    assert retried.exit_code == 0, retried.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("init", "--key-backend", "vault"), "unknown key backend 'vault'"),
        (("init", "--key-backend", "pkcs11", "--token-label", "x"), "needs --pkcs11-module, --pin-file"),
        (("init", "--token-label", "x"), "go with --key-backend pkcs11"),
    ],
)
def test_bad_key_backend_flags_are_one_line_and_exit_2(cli: Cli, args: tuple[str, ...], message: str) -> None:
    result = cli(*args)
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert not (cli.data_dir / "config.toml").exists()


def test_a_key_type_the_token_cannot_hold_is_refused(cli: Cli, pin_file: Path) -> None:
    result = cli(*_pkcs11(pin_file, "--key-type", "ed25519"))
    assert result.exit_code == 2
    assert "the pkcs11 key backend holds ec-p256" in result.stderr
    assert not (cli.data_dir / "config.toml").exists()
