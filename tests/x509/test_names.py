"""Names that go into certificates: what is accepted, how it is normalised, what is refused."""

from __future__ import annotations

import ipaddress

import pytest
from cryptography import x509

from certfleet.x509 import MAX_SANS, BadName, SubjectName, parse_names
from certfleet.x509.names import MAX_NAME_BYTES


def _name_of_length(length: int) -> str:
    """A valid DNS name of exactly ``length`` bytes, built from 63-byte labels."""
    labels: list[str] = []
    remaining = length
    while remaining > 0:
        size = min(63, remaining if not labels else remaining - 1)
        if labels:
            remaining -= 1  # the dot
        labels.append("a" * size)
        remaining -= size
    name = ".".join(labels)
    assert len(name) == length
    return name


@pytest.mark.parametrize(
    ("raw", "kind", "value"),
    [
        ("www.example.com", "dns", "www.example.com"),
        ("WWW.Example.COM", "dns", "www.example.com"),
        ("www.example.com.", "dns", "www.example.com"),  # absolute form: the root label dropped
        ("  api.example.com  ", "dns", "api.example.com"),
        ("*.example.com", "dns", "*.example.com"),
        ("xn--bcher-kva.example", "dns", "xn--bcher-kva.example"),
        ("a-b.c-d.example", "dns", "a-b.c-d.example"),
        ("localhost", "dns", "localhost"),
        ("1a.example.com", "dns", "1a.example.com"),
        ("192.0.2.10", "ip", "192.0.2.10"),
        ("2001:DB8:0:0:0:0:0:1", "ip", "2001:db8::1"),
        ("2001:db8::0:1", "ip", "2001:db8::1"),
        ("[2001:db8::1]", "ip", "2001:db8::1"),
        ("::1", "ip", "::1"),
        ("fe80:0000::0001", "ip", "fe80::1"),
    ],
)
def test_valid_names_are_normalised(raw: str, kind: str, value: str) -> None:
    name = SubjectName.parse(raw)
    assert (name.kind, name.value) == (kind, value)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty name"),
        ("   ", "empty name"),
        ("www..example.com", "empty label"),
        (".example.com", "empty label"),
        ("example.com..", "empty label"),
        ("www_1.example.com", "illegal characters"),
        ("www example.com", "illegal characters"),
        ("exa$mple.com", "illegal characters"),
        ("-www.example.com", "illegal characters"),
        ("www-.example.com", "illegal characters"),
        ("www.exa/mple.com", "illegal characters"),
        ("bücher.example", "non-ASCII"),
        ("www.*.example.com", "not the leftmost"),
        ("www.example.*", "not the leftmost"),
        ("*.*.example.com", "more than one wildcard"),
        ("**.example.com", "more than one wildcard"),
        ("w*.example.com", "partial wildcard"),
        ("*w.example.com", "partial wildcard"),
        ("*.com", "at least two labels"),
        ("a" * 64 + ".example.com", "longer than 63"),
        ("010.0.0.1", "neither a valid IPv4"),
        ("256.1.1.1", "neither a valid IPv4"),
        ("1.2.3", "neither a valid IPv4"),
        ("2001:db8::g", "not a valid IPv6"),
        ("www.example.com:443", "not a valid IPv6"),
        ("fe80::1%eth0", "zone index"),
        ("[192.0.2.1]", "illegal characters"),
    ],
)
def test_bad_names_are_refused_with_their_reason(raw: str, reason: str) -> None:
    with pytest.raises(BadName, match=reason):
        SubjectName.parse(raw)


def test_longest_name_is_253_bytes() -> None:
    assert MAX_NAME_BYTES == 253
    at_limit = _name_of_length(253)
    assert SubjectName.parse(at_limit).value == at_limit
    assert SubjectName.parse(at_limit + ".").value == at_limit  # the trailing dot is not counted
    with pytest.raises(BadName, match="longer than 253 bytes"):
        SubjectName.parse(_name_of_length(254))


def test_wildcard_property() -> None:
    assert SubjectName.parse("*.example.com").is_wildcard
    assert not SubjectName.parse("www.example.com").is_wildcard
    assert not SubjectName.parse("192.0.2.1").is_wildcard


@pytest.mark.parametrize(
    ("raw", "general"),
    [
        ("www.example.com", x509.DNSName("www.example.com")),
        ("192.0.2.1", x509.IPAddress(ipaddress.ip_address("192.0.2.1"))),
        ("2001:DB8::1", x509.IPAddress(ipaddress.ip_address("2001:db8::1"))),
    ],
)
def test_general_name(raw: str, general: x509.GeneralName) -> None:
    assert SubjectName.parse(raw).general_name() == general


def test_parse_names_deduplicates_after_normalising_and_keeps_order() -> None:
    names = parse_names(["B.example.com", "a.example.com", "b.example.com.", "2001:db8::1", "2001:DB8:0::1"])
    assert [n.value for n in names] == ["b.example.com", "a.example.com", "2001:db8::1"]


def test_at_most_100_sans() -> None:
    assert MAX_SANS == 100
    hundred = [f"h{i}.example.com" for i in range(100)]
    assert len(parse_names(hundred)) == 100
    # A duplicate does not count twice.
    assert len(parse_names([*hundred, "H0.example.com"])) == 100
    with pytest.raises(BadName, match="101 subject alternative names"):
        parse_names([*hundred, "h100.example.com"])


def test_one_bad_name_refuses_the_whole_list() -> None:
    with pytest.raises(BadName, match="empty label"):
        parse_names(["ok.example.com", "bad..example.com"])
