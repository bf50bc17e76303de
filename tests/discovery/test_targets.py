from __future__ import annotations

from pathlib import Path

import pytest

from certfleet.discovery import BadTarget, Endpoint, expand_endpoints, parse_ports, read_targets
from certfleet.discovery.targets import parse_target


@pytest.mark.parametrize(
    ("raw", "host", "port"),
    [
        ("www.Example.test", "www.example.test", None),
        ("www.example.test:8443", "www.example.test", 8443),
        ("192.0.2.7", "192.0.2.7", None),
        ("192.0.2.7:443", "192.0.2.7", 443),
        ("2001:db8::1", "2001:db8::1", None),
        ("[2001:db8::1]:8443", "2001:db8::1", 8443),
        ("[::1]", "::1", None),
    ],
)
def test_single_targets(raw: str, host: str, port: int | None) -> None:
    target = parse_target(raw)
    assert (target.host, target.port) == (host, port)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "empty target"),
        ("host:0", "bad port"),
        ("host:99999", "bad port"),
        ("host:https", "bad port"),
        ("[::1", "expected [IPv6]"),
        ("2001:db8::zz", "bad IPv6 address"),
        ("bad_name!", "bad host name"),
        ("*.example.test", "wildcard"),
        ("10.0.0.0/33", "bad network"),
        ("10.0.0.0/8", "at most"),
    ],
)
def test_bad_targets_are_refused_with_the_reason(raw: str, message: str) -> None:
    with pytest.raises(BadTarget, match=message.replace("[", r"\[")):
        parse_target(raw)


def test_cidr_expands_to_host_addresses() -> None:
    endpoints = expand_endpoints(read_targets(["192.0.2.0/30"]), (443,))
    assert [e.host for e in endpoints] == ["192.0.2.1", "192.0.2.2"]
    # RFC 3021: a /31 has no network or broadcast address to skip.
    assert [e.host for e in expand_endpoints(read_targets(["192.0.2.0/31"]), (443,))] == [
        "192.0.2.0",
        "192.0.2.1",
    ]
    assert len(expand_endpoints(read_targets(["192.0.2.0/24"]), (443,))) == 254
    assert [e.host for e in expand_endpoints(read_targets(["2001:db8::/127"]), (443,))] == [
        "2001:db8::",
        "2001:db8::1",
    ]


def test_names_send_sni_and_addresses_do_not() -> None:
    endpoints = expand_endpoints(read_targets(["www.example.test", "192.0.2.1"]), (443,))
    assert endpoints == [
        Endpoint("www.example.test", 443, "www.example.test"),
        Endpoint("192.0.2.1", 443, None),
    ]


def test_sni_names_multiply_endpoints() -> None:
    endpoints = expand_endpoints(read_targets(["192.0.2.1:8443"]), (443,), ["a.test", "b.test", "a.test"])
    assert endpoints == [Endpoint("192.0.2.1", 8443, "a.test"), Endpoint("192.0.2.1", 8443, "b.test")]
    with pytest.raises(BadTarget, match="SNI carries host names only"):
        expand_endpoints(read_targets(["192.0.2.1"]), (443,), ["192.0.2.9"])


def test_order_interleaves_hosts_so_one_host_never_holds_every_slot() -> None:
    endpoints = expand_endpoints(read_targets(["192.0.2.0/30", "198.51.100.9"]), (443, 8443))
    assert [e.address for e in endpoints] == [
        "192.0.2.1:443",
        "198.51.100.9:443",
        "192.0.2.2:443",
        "198.51.100.9:8443",
        "192.0.2.1:8443",
        "192.0.2.2:8443",
    ]


def test_target_file_with_comments_and_errors(tmp_path: Path) -> None:
    listing = tmp_path / "targets.txt"
    listing.write_text("# web\nwww.example.test\n\n192.0.2.0/30  # lab\n[::1]:8443\n")
    targets = read_targets([f"@{listing}"])
    assert [(t.host, str(t.network) if t.network else None, t.port) for t in targets] == [
        ("www.example.test", None, None),
        (None, "192.0.2.0/30", None),
        ("::1", None, 8443),
    ]
    listing.write_text("ok.example.test\nnot valid!\n")
    with pytest.raises(BadTarget, match=r"targets.txt:2: bad host name"):
        read_targets([f"@{listing}"])
    with pytest.raises(BadTarget, match="cannot read target file"):
        read_targets([f"@{tmp_path / 'missing.txt'}"])


def test_ports() -> None:
    assert parse_ports("443, 8443,443") == (443, 8443)
    assert parse_ports("8440-8442") == (8440, 8441, 8442)
    assert parse_ports(None) == (443,)
    for bad in ("", "0", "70000", "9-3", "x"):
        with pytest.raises(BadTarget):
            parse_ports(bad)


def test_endpoint_location_keys() -> None:
    assert Endpoint("2001:db8::1", 443).address == "[2001:db8::1]:443"
    assert str(Endpoint("192.0.2.1", 443, "www.example.test")) == "192.0.2.1:443 (www.example.test)"
