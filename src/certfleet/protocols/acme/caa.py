"""CAA checking (RFC 8659) with the account and method parameters of RFC 8657.

The relevant RRset is the first non-empty CAA RRset found climbing from the name towards the
root (RFC 8659 section 3); no record anywhere means any CA may issue. A wildcard is checked
against ``issuewild`` when present, else ``issue``. A failed look-up refuses issuance.
"""

from __future__ import annotations

from collections.abc import Sequence

from certfleet.protocols.acme.problems import AcmeProblem
from certfleet.protocols.acme.resolver import CaaRecord, Question, Resolver

__all__ = ["CaaChecker"]

_CRITICAL = 0x80
_KNOWN_TAGS = {"issue", "issuewild", "iodef", "contactemail", "contactphone", "issuemail", "issuevmc"}


def _parse_value(value: str) -> tuple[str, dict[str, str]]:
    """``issuer-domain-name; key=value; key=value`` (RFC 8659 section 4.2)."""
    domain, _, rest = value.partition(";")
    params: dict[str, str] = {}
    for part in rest.split(";"):
        key, sep, val = part.strip().partition("=")
        if sep and key:
            params[key.strip().lower()] = val.strip()
    return domain.strip().lower().rstrip("."), params


class CaaChecker:
    def __init__(self, resolver: Resolver, identities: Sequence[str]) -> None:
        self._resolver = resolver
        self._identities = {i.lower().rstrip(".") for i in identities}

    @staticmethod
    def _climb(name: str) -> list[str]:
        labels = name.rstrip(".").split(".")
        return [".".join(labels[index:]) for index in range(len(labels))]

    def questions(self, name: str) -> list[Question]:
        """Every CAA look-up :meth:`check` may make for ``name``, to be asked together."""
        return [(candidate, "CAA") for candidate in self._climb(name)]

    def relevant_rrset(self, name: str) -> tuple[str, Sequence[CaaRecord]]:
        for candidate in self._climb(name):
            records = self._resolver.caa(candidate)
            if records:
                return candidate, records
        return "", ()

    def check(self, name: str, *, wildcard: bool, account_uri: str, method: str) -> None:
        """Raise ``caa`` unless CAA lets this CA issue for ``name`` (the wildcard's parent
        when ``wildcard``) to this account by this validation method."""
        where, records = self.relevant_rrset(name)
        if not records:
            return
        for record in records:
            if record.flags & _CRITICAL and record.tag not in _KNOWN_TAGS:
                raise AcmeProblem(
                    "caa", f"CAA at {where} has an unknown critical property {record.tag!r} (RFC 8659 4.1)"
                )
        issuewild = [r for r in records if r.tag == "issuewild"]
        relevant = issuewild if wildcard and issuewild else [r for r in records if r.tag == "issue"]
        if not relevant:
            return  # only iodef or other tags: no restriction on issuance
        for record in relevant:
            domain, params = _parse_value(record.value)
            if domain not in self._identities:
                continue
            if "accounturi" in params and params["accounturi"] != account_uri:
                continue
            methods = params.get("validationmethods")
            if methods and method not in {m.strip() for m in methods.split(",")}:
                continue
            return
        kind = "issuewild" if wildcard and issuewild else "issue"
        raise AcmeProblem("caa", f"CAA records at {where} do not allow this CA ({kind}) to issue for {name}")
