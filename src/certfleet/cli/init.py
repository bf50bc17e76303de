from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from certfleet.app import Platform
from certfleet.cli._common import DataDirOption, DbOption, die, platform, settings_for
from certfleet.cli._remote import local_only
from certfleet.x509 import KeyType, fingerprint_sha256

if TYPE_CHECKING:
    from certfleet.config import Settings

# Key types an HSM token holds for the CA (PKCS#11 EC P-256/P-384 and RSA).
_PKCS11_KEY_TYPES = ("ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096")


def initialize(p: Platform, key_type: str, ca_name: str) -> None:
    root, inter = p.authorities.initialize(ca_name, KeyType.parse(key_type), actor="cli")
    console = Console(emoji=False, highlight=False, soft_wrap=True)
    console.print(f"Data directory: {p.settings.data_dir.root}")
    console.print(f"Root CA:        {root.name} ({root.id}), valid until {root.not_after:%Y-%m-%d}")
    console.print(f"Issuing CA:     {inter.name} ({inter.id}), valid until {inter.not_after:%Y-%m-%d}")
    console.print(f"CA keys:        {root.key_backend}")
    tls_root = p.authorities.ensure_tls_root(actor="cli")
    if tls_root.id != root.id:
        # OpenSSL 3.0 (Python's ssl, uvicorn, agents, curl) cannot load an ML-DSA chain: the
        # HTTPS listener's chain starts from a classic root of its own (see ca._server_identity).
        console.print(f"Root SHA-256:   {fingerprint_sha256(root.certificate)} ({key_type}, issues leaves)")
        console.print(
            f"TLS root:       {tls_root.name} ({tls_root.id}), valid until {tls_root.not_after:%Y-%m-%d}"
        )
        console.print(f"TLS root SHA-256: {fingerprint_sha256(tls_root.certificate)}")
        console.print(
            "Pin the TLS root (agent enrol --ca-fingerprint, certfleet login --ca-fingerprint): the "
            f"HTTPS listener chains to it, since OpenSSL 3.0 cannot verify {key_type}. It signs only "
            "the listener's CA; agents learn the root above over the authenticated channel."
        )


def _keys_values(module: Path | None, token_label: str | None, pin_file: Path | None) -> dict[str, str]:
    """The ``[keys]`` values ``init --key-backend pkcs11`` writes to config.toml: paths are
    made absolute (``serve`` may run elsewhere); the PIN stays in its file."""
    given = (("--pkcs11-module", module), ("--token-label", token_label), ("--pin-file", pin_file))
    missing = [flag for flag, value in given if not value]
    if missing:
        die(f"--key-backend pkcs11 needs {', '.join(missing)}")
    assert module and token_label and pin_file
    for what, path in (("PKCS#11 module", module), ("PIN file", pin_file)):
        if not path.is_file():
            die(f"{what} {path} does not exist")
    return {
        "backend": "pkcs11",
        "pkcs11_module": str(module.absolute()),
        "token_label": token_label,
        "pin_file": str(pin_file.absolute()),
    }


def _write_keys_section(settings: Settings, values: dict[str, str]) -> None:
    """Append ``[keys]`` to config.toml; an identical one already there (a retried ``init``
    after the token was unavailable) is kept, a different one refused."""
    current = settings.keys
    if current.backend != "software":
        same = all(getattr(current, key) == value for key, value in values.items())
        if not same:
            die(f"{settings.data_dir.config_file} already has a different [keys] section; edit it instead")
        return
    settings.data_dir.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    config = settings.data_dir.config_file
    existing = config.read_text(encoding="utf-8") if config.exists() else ""
    body = "".join(f"{key} = {_toml_string(value)}\n" for key, value in values.items())
    config.write_text(f"{existing}\n[keys]\n{body}", encoding="utf-8")


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def init(
    data_dir: DataDirOption = None,
    db: DbOption = None,
    key_type: Annotated[
        str,
        typer.Option("--key-type", help="ec-p256, ec-p384, rsa-2048/3072/4096, ed25519 or ml-dsa-44/65/87."),
    ] = "ec-p256",
    ca_name: Annotated[
        str, typer.Option("--ca-name", help="Name of the CA (its subject O and CN).")
    ] = "certfleet",
    key_backend: Annotated[
        str,
        typer.Option(
            "--key-backend",
            help="Where CA keys live: software (encrypted files) or pkcs11 (an HSM token).",
        ),
    ] = "software",
    pkcs11_module: Annotated[
        Path | None, typer.Option("--pkcs11-module", help="PKCS#11 module (shared library) of the HSM.")
    ] = None,
    token_label: Annotated[str | None, typer.Option("--token-label", help="Label of the HSM token.")] = None,
    pin_file: Annotated[
        Path | None, typer.Option("--pin-file", help="File (mode 0600) holding the token's user PIN.")
    ] = None,
) -> None:
    """Create the data directory, database and a root plus issuing CA."""
    local_only("init")
    KeyType.parse(key_type)  # refuse a bad key type before touching anything
    if key_backend not in ("software", "pkcs11"):
        die(f"unknown key backend {key_backend!r}: expected software or pkcs11")
    if key_backend == "software" and (pkcs11_module or token_label or pin_file):
        die("--pkcs11-module, --token-label and --pin-file go with --key-backend pkcs11")
    settings = None
    if key_backend == "pkcs11":
        if key_type not in _PKCS11_KEY_TYPES:
            die(f"the pkcs11 key backend holds {', '.join(_PKCS11_KEY_TYPES)} keys, not {key_type}")
        _write_keys_section(settings_for(data_dir, db), _keys_values(pkcs11_module, token_label, pin_file))
        settings = settings_for(data_dir, db)
    with platform(data_dir, db, create=True, settings=settings) as p:
        initialize(p, key_type, ca_name)
