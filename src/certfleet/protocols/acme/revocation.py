"""revokeCert (RFC 8555 section 7.6): by the account that ordered the certificate, by an
account holding valid authorizations for all its names, or signed with the certificate's
own key. The reason must be one a subscriber may give.

Two limits protect a certificate's holder from someone who merely controls its names:

- ``keyCompromise`` blocks the key from any future issuance, so an account that did not
  order the certificate must prove the compromise by signing with the certificate's key
  (a JWS whose ``jwk`` is that key), as Boulder requires.
- A certfleet agent's identity certificate (its mTLS client certificate) is revoked over
  ACME only by the agent itself, signing with that certificate's key; administrators
  revoke it through the API or ``certfleet agent revoke``. Otherwise anyone able to answer
  a challenge for the agent's host name could cut the agent off.
"""

from __future__ import annotations

import hashlib

from cryptography import x509

from certfleet.clock import Clock
from certfleet.errors import Conflict
from certfleet.inventory import CertificateRecord, Status
from certfleet.lifecycle.jobs import AGENT_IDENTITY_TAG
from certfleet.protocols.acme._ports import Revoker
from certfleet.protocols.acme.accounts import Account
from certfleet.protocols.acme.authentication import AcmeRequest, Authenticator, KeyMode
from certfleet.protocols.acme.jws import b64decode, spki_of_jwk
from certfleet.protocols.acme.problems import AcmeProblem
from certfleet.protocols.acme.responses import AcmeResponse
from certfleet.protocols.acme.transactions import RequestTransactions
from certfleet.x509 import spki_der

__all__ = ["REVOCATION_REASONS", "RevocationEndpoint"]

# RFC 5280 5.3.1 codes a subscriber may use; the CA-only ones (cACompromise, certificateHold,
# removeFromCRL, privilegeWithdrawn, aACompromise) are refused, as Boulder does.
KEY_COMPROMISE = 1
REVOCATION_REASONS = {
    0: "unspecified",
    1: "keyCompromise",
    3: "affiliationChanged",
    4: "superseded",
    5: "cessationOfOperation",
}


class RevocationEndpoint:
    def __init__(
        self, uow: RequestTransactions, clock: Clock, auth: Authenticator, revoker: Revoker | None
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._auth = auth
        self._revoker = revoker

    def revoke(self, request: AcmeRequest) -> AcmeResponse:
        verified = self._auth.verify(request, KeyMode.EITHER)
        payload = verified.message.json_payload()
        if set(payload) - {"certificate", "reason"} or "certificate" not in payload:
            raise AcmeProblem("malformed", "revokeCert takes 'certificate' and an optional 'reason'")
        der = b64decode(payload["certificate"], "certificate")
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError as exc:
            raise AcmeProblem("malformed", "certificate is not a DER X.509 certificate") from exc
        reason = payload.get("reason", 0)
        if not isinstance(reason, int) or isinstance(reason, bool) or reason not in REVOCATION_REASONS:
            allowed = ", ".join(f"{k} ({v})" for k, v in REVOCATION_REASONS.items())
            raise AcmeProblem(
                "badRevocationReason", f"reason {reason!r} is not allowed; use one of {allowed}"
            )
        with self._uow() as uow:
            record = uow.certificates.get_by_fingerprint(hashlib.sha256(der).hexdigest())
        if record is None or record.issuer_ca_id is None:
            raise AcmeProblem("notFound", "this server did not issue that certificate")
        if verified.account is not None:
            self._check_account(verified.account, record, reason)
        else:
            if spki_of_jwk(verified.key) != spki_der(cert.public_key()):
                raise AcmeProblem("unauthorized", "the request is not signed by the certificate's key")
        if record.status is Status.REVOKED:
            raise AcmeProblem("alreadyRevoked", f"certificate {record.serial} is already revoked")
        if self._revoker is None:
            raise AcmeProblem("serverInternal", "revocation is not available on this server")
        self._uow.commit()  # the revocation service opens transactions of its own
        actor = f"acme:{verified.account.id}" if verified.account else "acme:certificate-key"
        try:
            self._revoker.revoke(record.serial, REVOCATION_REASONS[reason], actor=actor)
        except Conflict as exc:
            raise AcmeProblem("alreadyRevoked", exc.detail) from exc
        return AcmeResponse(200, None)

    def _check_account(self, account: Account, record: CertificateRecord, reason: int) -> None:
        if AGENT_IDENTITY_TAG in record.tags:
            raise AcmeProblem(
                "unauthorized",
                "this is a certfleet agent's identity certificate: over ACME only the agent may "
                "revoke it, signing with the certificate's key (administrators use the API or "
                "'certfleet agent revoke')",
            )
        with self._uow() as uow:
            order = uow.acme.orders.find_by_certificate(record.serial)
            if order is not None and order.account_id == account.id:
                return
            held = {i.value for i in uow.acme.authorizations.valid_names(account.id, self._clock.now())}
        if record.sans and set(record.sans) <= held:
            if reason == KEY_COMPROMISE:
                raise AcmeProblem(
                    "unauthorized",
                    "keyCompromise from an account that did not order the certificate must prove "
                    "the compromise: sign the request with the certificate's key (a JWS whose "
                    "'jwk' is the certificate's public key)",
                )
            return
        raise AcmeProblem(
            "unauthorized",
            "the account neither ordered this certificate nor holds authorizations for all its names",
        )
