"""Rotation's file writing: with ``--generate-keys`` the new keys and certificates go to
``DIR/<old serial>/`` on the machine that runs the campaign, for the operator to deploy."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from certfleet.fs import write_atomic
from certfleet.inventory import CertificateRecord
from certfleet.lifecycle.campaigns import Campaign, CampaignItem
from certfleet.x509 import KeyType, generate_private_key, to_pem

__all__ = ["generated_key", "write_files"]


def _item_dir(campaign: Campaign, item: CampaignItem) -> Path:
    assert campaign.generate_dir is not None
    return Path(campaign.generate_dir) / item.serial


def generated_key(campaign: Campaign, item: CampaignItem) -> CertificateIssuerPrivateKeyTypes:
    """The item's new key: read back when a killed run already wrote it (so the same key
    is certified and the certificate it may already have is adopted), else generated and
    written (0600) before any certificate is requested for it."""
    assert campaign.to_key_type is not None
    directory = _item_dir(campaign, item)
    path = directory / "key.pem"
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        return key  # type: ignore[return-value]
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = generate_private_key(KeyType.parse(campaign.to_key_type))
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_atomic(path, pem, mode=0o600)
    return key


def write_files(
    campaign: Campaign, item: CampaignItem, new: CertificateRecord, chain: tuple[x509.Certificate, ...]
) -> None:
    """The new certificate beside its key: ``cert.pem``, ``chain.pem`` and ``fullchain.pem``."""
    directory = _item_dir(campaign, item)
    write_atomic(directory / "cert.pem", to_pem([new.certificate()]).encode())
    write_atomic(directory / "chain.pem", to_pem(chain).encode())
    write_atomic(directory / "fullchain.pem", to_pem((new.certificate(), *chain)).encode())
