"""A new CA key, and the CA a root signs for it: what the issuing intermediates' rotation
(:mod:`certfleet.services.authorities`) and the listener's own CAs
(:mod:`certfleet.services._listener_cas`) share, with the ``ca.created`` audit entry."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from certfleet.audit import AuditLog
from certfleet.ca import CaCertificate, CaUrls, ca_id_for
from certfleet.ca.keys import KeyBackend
from certfleet.clock import Clock
from certfleet.services._hierarchies import hierarchy_name
from certfleet.x509 import KeyType

__all__ = ["BuildUnderRoot", "CaMinter", "record_created"]

# build_intermediate and build_server_identity_ca: (CA name, key, root certificate, root key,
# root id, URLs, now, generation) -> the new CA's certificate.
BuildUnderRoot = Callable[
    [
        str,
        CertificateIssuerPrivateKeyTypes,
        x509.Certificate,
        CertificateIssuerPrivateKeyTypes,
        str,
        CaUrls,
        dt.datetime,
        int,
    ],
    x509.Certificate,
]


def record_created(log: AuditLog, actor: str, ca: CaCertificate, key_type: KeyType) -> None:
    details = {
        "name": ca.name,
        "role": ca.role,
        "key_type": key_type.value,
        "not_after": ca.not_after.isoformat(),
    }
    log.record(actor, "ca.created", ca.id, details)


class CaMinter:
    def __init__(self, keys: KeyBackend, urls: CaUrls, clock: Clock) -> None:
        self._keys = keys
        self._urls = urls
        self._clock = clock

    @contextmanager
    def fresh_key(self, label: str, key_type: KeyType) -> Iterator[str]:
        """A new CA key; deleted again if what uses it fails, so no orphan key file remains."""
        ref = self._keys.create(label, key_type)
        try:
            yield ref
        except BaseException:
            delete = getattr(self._keys, "delete", None)
            if delete is not None:
                delete(ref)
            raise

    def signed_by_root(
        self, root: CaCertificate, ref: str, build: BuildUnderRoot, role: str, title: str, generation: int
    ) -> CaCertificate:
        """A CA under ``root`` for the key ``ref``, named after the root's organisation."""
        ca_name = hierarchy_name(root)
        cert = build(
            ca_name,
            self._keys.load(ref),
            root.certificate,
            self._keys.load(root.key_ref),
            root.id,
            self._urls,
            self._clock.now(),
            generation,
        )
        name = f"{ca_name} {title} {generation}"
        return CaCertificate(ca_id_for(cert), name, role, root.id, cert, self._keys.name, ref, True)
