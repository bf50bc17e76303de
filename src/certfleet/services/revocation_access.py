"""Who may revoke which certificate: the names a principal's patterns must cover, and the
agent identities only an admin or the agent itself may revoke.

Kept apart from the revocation service because it changes for a different reason (the
access model), and because the dashboard asks the same question to decide whether to show
its revoke button.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID

from certfleet.access import Principal
from certfleet.inventory import CertificateRecord
from certfleet.x509 import BadName, SubjectName

__all__ = ["AGENT_IDENTITY_TAG", "agent_identity_of", "authorize_revocation", "names_of", "visible_to"]

# Set by the agent service on every identity certificate it issues, next to ``agent:<host>``.
AGENT_IDENTITY_TAG = "certfleet-agent-identity"
_AGENT_TAG_PREFIX = "agent:"


def agent_identity_of(record: CertificateRecord) -> str | None:
    """The host whose mTLS identity this certificate is, or None. An identity tag without a
    host tag yields "" (nobody's, so admin only)."""
    if AGENT_IDENTITY_TAG not in record.tags:
        return None
    hosts = [t.removeprefix(_AGENT_TAG_PREFIX) for t in record.tags if t.startswith(_AGENT_TAG_PREFIX)]
    return hosts[0] if len(hosts) == 1 else ""


def names_of(record: CertificateRecord) -> tuple[list[SubjectName], list[str]]:
    """Every name the certificate carries, read from the certificate itself (the record's
    ``sans`` skip kinds other than DNS and IP): those a pattern can match, and the rest
    (URI, e-mail and other SAN kinds, a CN that is not a host name) as text."""
    certificate = record.certificate()
    matchable: list[SubjectName] = []
    unmatchable: list[str] = []

    def add(raw: str) -> None:
        try:
            matchable.append(SubjectName.parse(raw))
        except BadName:
            unmatchable.append(raw)

    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    for general_name in san or ():
        if isinstance(general_name, x509.DNSName):
            add(general_name.value)
        elif isinstance(general_name, x509.IPAddress):
            add(general_name.value.compressed)
        else:
            unmatchable.append(f"{type(general_name).__name__}:{general_name.value}")
    for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
        value = attribute.value if isinstance(attribute.value, str) else attribute.value.decode("latin-1")
        add(value)
    return matchable, unmatchable


def authorize_revocation(principal: Principal, record: CertificateRecord) -> None:
    """Raise Forbidden unless ``principal`` may revoke ``record`` (team visibility is the
    caller's look-up: another team's certificate is not found at all)."""
    if principal.is_admin:
        return
    matchable, unmatchable = names_of(record)
    principal.authorize_revocation(matchable, unmatchable=unmatchable, agent=agent_identity_of(record))


def visible_to(principal: Principal, record: CertificateRecord) -> bool:
    """Its team's certificates (admin: all), and an agent's own identity certificates even
    when the agent has no team."""
    if principal.can_see_team(record.team):
        return True
    host = agent_identity_of(record)
    return bool(host) and principal.name == f"agent:{host}"
