"""SPIFFE IDs (SPIFFE-ID spec, https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md).

A SPIFFE ID is ``spiffe://<trust domain><path>``: the trust domain is lower-case letters,
digits, ``.``, ``-`` and ``_`` (section 2.1); the path is ``/``-separated segments of letters,
digits, ``.``, ``-`` and ``_``, none empty, ``.`` or ``..`` (section 2.2); no port, user info,
query or fragment; at most 2048 bytes. Upper case is refused rather than folded, as the spec
asks, so two spellings never name one workload.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from certfleet.spiffe.errors import InvalidSpiffeId

__all__ = ["MAX_SPIFFE_ID_LENGTH", "SpiffeId", "TrustDomain"]

SCHEME_PREFIX = "spiffe://"
MAX_SPIFFE_ID_LENGTH = 2048
MAX_TRUST_DOMAIN_LENGTH = 255
_TRUST_DOMAIN_CHARS = frozenset(string.ascii_lowercase + string.digits + ".-_")
_PATH_CHARS = frozenset(string.ascii_letters + string.digits + ".-_")


@dataclass(frozen=True, order=True)
class TrustDomain:
    """A trust domain name such as ``example.org`` (no scheme)."""

    name: str

    def __post_init__(self) -> None:
        if not self.name:
            raise InvalidSpiffeId("trust domain is empty")
        if len(self.name) > MAX_TRUST_DOMAIN_LENGTH:
            raise InvalidSpiffeId(f"trust domain is longer than {MAX_TRUST_DOMAIN_LENGTH} characters")
        bad = sorted(set(self.name) - _TRUST_DOMAIN_CHARS)
        if bad:
            raise InvalidSpiffeId(
                f"trust domain {self.name!r} has characters outside [a-z0-9._-]: {''.join(bad)!r}"
            )

    @classmethod
    def parse(cls, text: str) -> TrustDomain:
        """Accept a bare name (``example.org``) or a trust domain's SPIFFE ID
        (``spiffe://example.org``)."""
        if text.startswith(SCHEME_PREFIX):
            spiffe_id = SpiffeId.parse(text)
            if spiffe_id.path:
                raise InvalidSpiffeId(f"{text!r} names a workload, not a trust domain")
            return spiffe_id.trust_domain
        if "/" in text or ":" in text:
            raise InvalidSpiffeId(f"{text!r} is not a trust domain name")
        return cls(text)

    def id(self) -> SpiffeId:
        """The trust domain's own SPIFFE ID, ``spiffe://<name>``."""
        return SpiffeId(self, "")

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, order=True)
class SpiffeId:
    """A parsed SPIFFE ID. ``path`` is empty or starts with ``/``; ``str()`` gives the URI."""

    trust_domain: TrustDomain
    path: str

    def __post_init__(self) -> None:
        _check_path(self.path)
        if len(str(self)) > MAX_SPIFFE_ID_LENGTH:
            raise InvalidSpiffeId(f"SPIFFE ID is longer than {MAX_SPIFFE_ID_LENGTH} bytes")

    @classmethod
    def parse(cls, text: str) -> SpiffeId:
        if not text:
            raise InvalidSpiffeId("SPIFFE ID is empty")
        if not text.startswith(SCHEME_PREFIX):
            raise InvalidSpiffeId(f"{text!r} is not a SPIFFE ID: it must start with 'spiffe://'")
        if len(text) > MAX_SPIFFE_ID_LENGTH:
            raise InvalidSpiffeId(f"SPIFFE ID is longer than {MAX_SPIFFE_ID_LENGTH} bytes")
        rest = text[len(SCHEME_PREFIX) :]
        for char, what in (("?", "a query"), ("#", "a fragment")):
            if char in rest:
                raise InvalidSpiffeId(f"{text!r} is not a SPIFFE ID: it has {what}")
        authority, slash, path = rest.partition("/")
        if "@" in authority:
            raise InvalidSpiffeId(f"{text!r} is not a SPIFFE ID: it has user info")
        if ":" in authority:
            raise InvalidSpiffeId(f"{text!r} is not a SPIFFE ID: it has a port")
        try:
            trust_domain = TrustDomain(authority)
        except InvalidSpiffeId as exc:
            raise InvalidSpiffeId(f"{text!r} is not a SPIFFE ID: {exc.detail}") from exc
        try:
            return cls(trust_domain, slash + path)
        except InvalidSpiffeId as exc:
            raise InvalidSpiffeId(f"{text!r} is not a SPIFFE ID: {exc.detail}") from exc

    @classmethod
    def from_segments(cls, trust_domain: TrustDomain, *segments: str) -> SpiffeId:
        return cls(trust_domain, "".join("/" + segment for segment in segments))

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(self.path.split("/")[1:]) if self.path else ()

    def is_member_of(self, trust_domain: TrustDomain) -> bool:
        return self.trust_domain == trust_domain

    def has_prefix(self, prefix: SpiffeId) -> bool:
        """True when ``prefix`` is this ID or an ancestor of it by whole path segments
        (``spiffe://td/ns`` covers ``spiffe://td/ns/app`` but not ``spiffe://td/nsx``)."""
        if prefix.trust_domain != self.trust_domain:
            return False
        return self.segments[: len(prefix.segments)] == prefix.segments

    def __str__(self) -> str:
        return SCHEME_PREFIX + self.trust_domain.name + self.path


def _check_path(path: str) -> None:
    if not path:
        return
    if not path.startswith("/"):
        raise InvalidSpiffeId("path must start with '/'")
    if path.endswith("/"):
        raise InvalidSpiffeId("path must not end with '/'")
    for segment in path[1:].split("/"):
        if not segment:
            raise InvalidSpiffeId("path has an empty segment")
        if segment in (".", ".."):
            raise InvalidSpiffeId(f"path has a relative segment {segment!r}")
        bad = sorted(set(segment) - _PATH_CHARS)
        if bad:
            raise InvalidSpiffeId(
                f"path segment {segment!r} has characters outside [A-Za-z0-9._-]: {''.join(bad)!r}"
            )
