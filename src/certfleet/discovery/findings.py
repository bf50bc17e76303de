"""Findings: stable codes, one fixed severity each, and the rules that raise them.

======================== ========= ===================================================
code                     severity  raised when
======================== ========= ===================================================
expired                  critical  now is after notAfter (any certificate found)
expiring                 medium    notAfter is within ``expiring`` (default 30 days)
self-signed              medium    an end-entity certificate signed by its own key
untrusted-issuer         high      the chain reaches neither the system trust store nor
                                   a certfleet (or ``--trust``) CA; not raised with
                                   ``self-signed``, the more precise finding
incomplete-chain         medium    the server did not send an intermediate on the path
hostname-mismatch        high      the name scanned (SNI, else host) is in no SAN
weak-key                 high      RSA/DSA under 2048 bits, EC under 256 bits
weak-signature           high      signed with SHA-1 or MD5 (not raised for self-signed
                                   certificates: nobody relies on a root's signature)
long-validity            low       an end-entity certificate valid over 398 days
legacy-tls               medium    the handshake negotiated below TLS 1.2 (RFC 8996)
no-hsts                  low       an HTTPS response without a positive HSTS max-age
no-https-redirect        medium    plain HTTP answers without redirecting to https://
unencrypted-private-key  medium    a private key stored without encryption
private-key-permissions  high      a file holding a private key is readable by group
                                   or others
key-reuse                medium    one public key in several certificates, or served at
                                   several endpoints
======================== ========= ===================================================

Names are matched as browsers do (RFC 6125 section 6.4): against DNS and IP SANs only, a
wildcard covering exactly one leftmost label; the subject CN is not consulted.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.x509.oid import ExtensionOID, SignatureAlgorithmOID

from certfleet.discovery._codes import SEVERITY, FindingCode, Severity
from certfleet.discovery.outcomes import EndpointOutcome, FileOutcome
from certfleet.discovery.trust import ChainAnalyzer, fingerprint, spki_sha256
from certfleet.errors import InvalidInput
from certfleet.x509 import is_ca

__all__ = [
    "SEVERITY",
    "CertificateVerdicts",
    "EvaluationPolicy",
    "Finding",
    "FindingCode",
    "KeyUse",
    "Severity",
    "certificate_findings",
    "endpoint_findings",
    "file_findings",
    "hostname_matches",
    "key_reuse_findings",
]


# CA/Browser Forum Baseline Requirements 6.3.2: subscriber certificates issued since
# 2020-09-01 are valid at most 398 days.
MAX_VALIDITY = dt.timedelta(days=398)
MIN_RSA_BITS = 2048
MIN_EC_BITS = 256
_WEAK_SIGNATURES = {
    SignatureAlgorithmOID.RSA_WITH_MD5: "MD5",
    SignatureAlgorithmOID.RSA_WITH_SHA1: "SHA-1",
    SignatureAlgorithmOID._RSA_WITH_SHA1: "SHA-1",
    SignatureAlgorithmOID.ECDSA_WITH_SHA1: "SHA-1",
    SignatureAlgorithmOID.DSA_WITH_SHA1: "SHA-1",
    x509.ObjectIdentifier("1.2.840.113549.1.1.2"): "MD2",
    x509.ObjectIdentifier("1.2.840.113549.1.1.3"): "MD4",
}
_LEGACY_PROTOCOLS = {"SSLv2", "SSLv3", "TLSv1", "TLSv1.1"}


@dataclass(frozen=True, order=True)
class Finding:
    """One finding at one location (``host:port`` or a path), about one certificate when
    ``fingerprint_sha256`` is set. ``key`` identifies it across scans."""

    code: FindingCode
    location: str
    sni: str | None
    fingerprint_sha256: str | None
    detail: str

    @property
    def severity(self) -> Severity:
        return SEVERITY[self.code]

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.code.value, self.location, self.sni or "", self.fingerprint_sha256 or "")


@dataclass(frozen=True)
class EvaluationPolicy:
    """The thresholds findings are judged by, and the time they are judged at."""

    now: dt.datetime
    expiring_within: dt.timedelta = dt.timedelta(days=30)

    def __post_init__(self) -> None:
        if self.expiring_within < dt.timedelta(0):
            raise InvalidInput("expiring days must not be negative")


def _label(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or f"serial {cert.serial_number:x}"


def _weak_key(cert: x509.Certificate) -> str | None:
    try:
        key = cert.public_key()
    except (ValueError, TypeError):
        return None
    if isinstance(key, rsa.RSAPublicKey | dsa.DSAPublicKey) and key.key_size < MIN_RSA_BITS:
        kind = "RSA" if isinstance(key, rsa.RSAPublicKey) else "DSA"
        return f"{kind} key of {key.key_size} bits (minimum {MIN_RSA_BITS})"
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size < MIN_EC_BITS:
        return f"EC key on {key.curve.name} ({key.curve.key_size} bits, minimum {MIN_EC_BITS})"
    return None


def certificate_findings(
    cert: x509.Certificate,
    policy: EvaluationPolicy,
    *,
    location: str,
    sni: str | None = None,
    self_signed: bool = False,
) -> list[Finding]:
    """Findings that depend on the certificate alone: validity, key and signature."""
    fp = fingerprint(cert)
    out: list[Finding] = []
    named: list[str] = []

    def label() -> str:
        # The subject as RFC 4514 text names the certificate in a finding's detail: most
        # certificates raise none, so it is written only for those that do.
        if not named:
            named.append(_label(cert))
        return named[0]

    def add(code: FindingCode, detail: str) -> None:
        out.append(Finding(code, location, sni, fp, detail))

    not_after = cert.not_valid_after_utc
    if not_after <= policy.now:
        add(FindingCode.EXPIRED, f"{label()} expired on {not_after:%Y-%m-%d %H:%M}Z")
    elif not_after <= policy.now + policy.expiring_within:
        days = (not_after - policy.now).days
        add(FindingCode.EXPIRING, f"{label()} expires on {not_after:%Y-%m-%d} (in {days} days)")
    weak = _weak_key(cert)
    if weak:
        add(FindingCode.WEAK_KEY, f"{label()}: {weak}")
    weak_hash = _WEAK_SIGNATURES.get(cert.signature_algorithm_oid)
    if weak_hash and not self_signed:
        add(FindingCode.WEAK_SIGNATURE, f"{label()} is signed with {weak_hash}")
    if not is_ca(cert):
        lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
        if lifetime > MAX_VALIDITY:
            add(FindingCode.LONG_VALIDITY, f"{label()} is valid for {lifetime.days} days (over 398)")
    return out


def hostname_matches(cert: x509.Certificate, name: str) -> bool:
    """RFC 6125 section 6.4: DNS names case-insensitively, ``*`` only as the whole leftmost
    label and covering exactly one label; IP addresses against IP SANs."""
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    assert isinstance(san, x509.SubjectAlternativeName)
    try:
        address = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        address = None
    if address is not None:
        return address in san.get_values_for_type(x509.IPAddress)
    wanted = name.lower().rstrip(".")
    for pattern in san.get_values_for_type(x509.DNSName):
        pattern = pattern.lower().rstrip(".")
        if pattern == wanted:
            return True
        if pattern.startswith("*.") and "." in wanted:
            head, _, rest = wanted.partition(".")
            if head and rest == pattern[2:]:
                return True
    return False


# What certificate_findings says of a certificate (code, detail), per certificate and whether
# it counts as self-signed: a fleet presents its intermediates at every endpoint, and a scan
# judges each once (one dict per scan: the policy's time is part of the verdict).
CertificateVerdicts = dict[tuple[x509.Certificate, bool | None], list[tuple[FindingCode, str]]]


def _chain_findings(
    chain: Sequence[x509.Certificate],
    self_signed_leaf: bool,
    policy: EvaluationPolicy,
    location: str,
    sni: str | None,
    judged: CertificateVerdicts,
) -> list[Finding]:
    out: list[Finding] = []
    for index, cert in enumerate(chain):
        key = (cert, self_signed_leaf if index == 0 else None)
        said = judged.get(key)
        if said is None:
            signed_by_self = self_signed_leaf if index == 0 else cert.issuer == cert.subject
            found = certificate_findings(cert, policy, location=location, sni=sni, self_signed=signed_by_self)
            judged[key] = [(f.code, f.detail) for f in found]
            out.extend(found)
        elif said:
            fp = fingerprint(cert)
            out.extend(Finding(code, location, sni, fp, detail) for code, detail in said)
    return out


def endpoint_findings(
    outcome: EndpointOutcome,
    analyzer: ChainAnalyzer,
    policy: EvaluationPolicy,
    judged: CertificateVerdicts | None = None,
) -> list[Finding]:
    """Every finding for one endpoint that completed a handshake (none for a failure).
    ``judged``: what was found on certificates met earlier in the same scan (filled here)."""
    observation = outcome.observation
    if observation is None:
        return []
    location, sni = outcome.location, outcome.endpoint.sni
    chain = observation.chain
    leaf = chain[0]
    verdict = analyzer.analyse(chain)
    out = _chain_findings(
        chain, verdict.self_signed_leaf, policy, location, sni, {} if judged is None else judged
    )
    leaf_fp = fingerprint(leaf)

    def add(code: FindingCode, detail: str, fp: str | None = leaf_fp) -> None:
        out.append(Finding(code, location, sni, fp, detail))

    name = outcome.endpoint.name
    if not hostname_matches(leaf, name):
        add(FindingCode.HOSTNAME_MISMATCH, f"{name} is not among the names of {_label(leaf)}")
    if verdict.self_signed_leaf:
        add(FindingCode.SELF_SIGNED, f"{_label(leaf)} is self-signed")
    elif not verdict.trusted:
        top = verdict.path[-1]
        add(
            FindingCode.UNTRUSTED_ISSUER,
            f"the chain ends at {top.issuer.rfc4514_string()}, which is not trusted",
        )
    if verdict.missing:
        names = "; ".join(_label(c) for c in verdict.missing)
        add(FindingCode.INCOMPLETE_CHAIN, f"the server does not send {names}")
    if observation.tls_version in _LEGACY_PROTOCOLS:
        add(FindingCode.LEGACY_TLS, f"negotiated {observation.tls_version} (below TLS 1.2)", None)
    hsts = observation.hsts
    if hsts is not None and hsts.answered and not hsts.enabled:
        shown = f"Strict-Transport-Security: {hsts.header}" if hsts.header else "no Strict-Transport-Security"
        add(FindingCode.NO_HSTS, f"the HTTPS response has {shown}", None)
    redirect = observation.redirect
    if (
        redirect is not None
        and redirect.reachable
        and redirect.status is not None
        and not redirect.redirects_to_https
    ):
        where = f" to {redirect.location}" if redirect.location else ""
        add(
            FindingCode.NO_HTTPS_REDIRECT,
            f"plain HTTP on port {redirect.port} answers {redirect.status}{where}, not a redirect to https://",
            None,
        )
    return sorted(set(out))


def file_findings(
    outcomes: Sequence[FileOutcome], analyzer: ChainAnalyzer, policy: EvaluationPolicy
) -> list[Finding]:
    """Findings for certificates and private keys found on disk. Keys are paired with
    certificates by public key across every file of the scan."""
    by_spki: dict[str, list[tuple[str, x509.Certificate]]] = {}
    for outcome in outcomes:
        for cert in outcome.certificates:
            try:
                by_spki.setdefault(spki_sha256(cert.public_key()), []).append((outcome.path, cert))
            except (ValueError, TypeError):
                continue
    out: list[Finding] = []
    for outcome in outcomes:
        for cert in outcome.certificates:
            verdict = analyzer.analyse([cert, *(c for c in outcome.certificates if c is not cert)])
            self_signed = verdict.self_signed_leaf
            fp = fingerprint(cert)
            out.extend(certificate_findings(cert, policy, location=outcome.path, self_signed=self_signed))
            if self_signed and not is_ca(cert):
                out.append(
                    Finding(FindingCode.SELF_SIGNED, outcome.path, None, fp, f"{_label(cert)} is self-signed")
                )
            elif not verdict.trusted:
                top = verdict.path[-1].issuer.rfc4514_string()
                detail = f"{_label(cert)} chains to {top}, which is not trusted"
                out.append(Finding(FindingCode.UNTRUSTED_ISSUER, outcome.path, None, fp, detail))
        out.extend(_key_findings(outcome, by_spki))
    return sorted(set(out))


def _key_findings(
    outcome: FileOutcome, by_spki: dict[str, list[tuple[str, x509.Certificate]]]
) -> list[Finding]:
    out: list[Finding] = []
    for key in outcome.keys:
        paired = by_spki.get(key.spki_sha256 or "", [])
        fp = fingerprint(paired[0][1]) if paired else None
        pairing = f" (the key of {_label(paired[0][1])} in {paired[0][0]})" if paired else ""
        if not key.encrypted:
            out.append(
                Finding(
                    FindingCode.UNENCRYPTED_PRIVATE_KEY,
                    outcome.path,
                    None,
                    fp,
                    f"a private key is stored unencrypted{pairing}",
                )
            )
    if outcome.keys and outcome.mode is not None and outcome.mode & 0o044:
        out.append(
            Finding(
                FindingCode.PRIVATE_KEY_PERMISSIONS,
                outcome.path,
                None,
                None,
                f"a file holding a private key has mode {outcome.mode:04o}: readable by "
                + " and ".join(w for w, bit in (("group", 0o040), ("others", 0o004)) if outcome.mode & bit),
            )
        )
    return out


@dataclass(frozen=True)
class KeyUse:
    """One end-entity certificate at one location, reduced to what key reuse compares."""

    spki_sha256: str
    fingerprint_sha256: str
    location: str
    sni: str | None
    is_endpoint: bool


def key_reuse_findings(
    uses: Iterable[KeyUse], report_for: set[tuple[str, str]] | None = None
) -> list[Finding]:
    """A key is reused when it is in several certificates, or served at several endpoints
    (``host:port``, whatever the SNI). The same certificate copied into several files is not
    reuse: certbot's cert.pem and fullchain.pem hold one leaf on purpose.

    ``report_for`` limits the findings to these ``(location, sni)`` pairs: those just scanned.
    """
    groups: dict[str, list[KeyUse]] = {}
    for use in uses:
        groups.setdefault(use.spki_sha256, []).append(use)
    out: list[Finding] = []
    for group in groups.values():
        certificates = {u.fingerprint_sha256 for u in group}
        endpoints = {u.location for u in group if u.is_endpoint}
        if len(certificates) < 2 and len(endpoints) < 2:
            continue
        places = sorted({u.location for u in group})
        shown = ", ".join(places[:5]) + (f" and {len(places) - 5} more" if len(places) > 5 else "")
        for use in group:
            if report_for is not None and (use.location, use.sni or "") not in report_for:
                continue
            detail = (
                f"the same key is in {len(certificates)} certificate(s) at {len(places)} location(s): {shown}"
            )
            out.append(Finding(FindingCode.KEY_REUSE, use.location, use.sni, use.fingerprint_sha256, detail))
    return sorted(set(out))
