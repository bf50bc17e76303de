"""Trust-store readers: each kind read from a store made by the real tool, and each kind's
malformed input giving one precise reason (never an exception)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from certfleet.discovery._nss import NssError, parse_listing
from certfleet.discovery.truststores import StoreKind, classify, read_store, read_stores, well_known_stores
from tests.discovery.pki import Pki, pem
from tests.discovery.truststore_fixtures import java_cacerts, nss_database


@pytest.fixture(scope="module")
def pkis() -> tuple[Pki, Pki]:
    return Pki("Alpha"), Pki("Beta")


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/etc/ssl/certs/ca-certificates.crt", StoreKind.SYSTEM),
        ("/mnt/image/etc/pki/tls/certs/ca-bundle.crt", StoreKind.SYSTEM),
        ("/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", StoreKind.SYSTEM),
        ("/usr/local/share/ca-certificates/corp/root.crt", StoreKind.ANCHORS),
        ("/etc/pki/ca-trust/source/anchors/corp.pem", StoreKind.ANCHORS),
        ("/usr/lib/jvm/java-17-openjdk-amd64/lib/security/cacerts", StoreKind.JAVA),
        ("/etc/ssl/certs/java/cacerts", StoreKind.JAVA),
        ("/home/ann/.pki/nssdb/cert9.db", StoreKind.NSS),
        ("/srv/venv/lib/python3.11/site-packages/certifi/cacert.pem", StoreKind.CERTIFI),
    ],
)
def test_stores_are_recognised_by_their_path(path: str, kind: StoreKind) -> None:
    found = classify(path)
    assert found is not None and found[0] is kind
    if kind is StoreKind.NSS:
        assert str(found[1]) == str(Path(path).parent)


@pytest.mark.parametrize(
    "path", ["/etc/nginx/tls/site.crt", "/srv/cacert.pem", "/tmp/cacerts", "/etc/ssl/certs"]
)
def test_other_files_are_no_store(path: str) -> None:
    assert classify(path) is None


def test_system_bundle_and_certifi_list_every_root(tmp_path: Path, pkis: tuple[Pki, Pki]) -> None:
    alpha, beta = pkis
    bundle = tmp_path / "etc/ssl/certs/ca-certificates.crt"
    bundle.parent.mkdir(parents=True)
    bundle.write_bytes(pem(alpha.root.cert, beta.root.cert))
    reading = read_store(StoreKind.SYSTEM, bundle)
    assert reading.ok and reading.format == "pem"
    assert [c.subject for c in reading.roots] == [alpha.root.cert.subject, beta.root.cert.subject]


def test_jks_cacerts_lists_its_trusted_entries(tmp_path: Path, pkis: tuple[Pki, Pki]) -> None:
    alpha, beta = pkis
    store = java_cacerts(tmp_path / "java/cacerts", {"alpha": alpha.root.cert, "beta": beta.root.cert})
    reading = read_store(StoreKind.JAVA, store)
    assert reading.error is None and reading.format == "jks"
    assert {c.subject for c in reading.roots} == {alpha.root.cert.subject, beta.root.cert.subject}


def test_pkcs12_cacerts_opens_with_the_java_default_password(tmp_path: Path, pkis: tuple[Pki, Pki]) -> None:
    alpha, _ = pkis
    store = java_cacerts(tmp_path / "security/cacerts", {"alpha": alpha.root.cert}, "PKCS12")
    reading = read_store(StoreKind.JAVA, store)
    assert reading.error is None and reading.format == "pkcs12"
    assert [c.subject for c in reading.roots] == [alpha.root.cert.subject]


def test_nss_counts_only_c_or_t_trust(tmp_path: Path, pkis: tuple[Pki, Pki]) -> None:
    alpha, beta = pkis
    folder = nss_database(
        tmp_path / "nssdb",
        {"Alpha Root": (alpha.root.cert, "C,,"), "Beta Intermediate": (beta.intermediate.cert, "c,,")},
    )
    reading = read_store(StoreKind.NSS, folder)
    assert reading.error is None
    assert [c.subject for c in reading.roots] == [alpha.root.cert.subject]


def test_a_walk_reads_each_store_once(tmp_path: Path, pkis: tuple[Pki, Pki]) -> None:
    alpha, beta = pkis
    anchors = tmp_path / "usr/local/share/ca-certificates"
    anchors.mkdir(parents=True)
    (anchors / "alpha.crt").write_bytes(pem(alpha.root.cert))
    nss_database(tmp_path / "etc/pki/nssdb", {"Beta": (beta.root.cert, "CT,C,C")})
    nss_database(tmp_path / "home/ann/.mozilla/firefox/abcd.default", {"Alpha": (alpha.root.cert, "C,,")})
    readings = read_stores(well_known_stores(tmp_path))
    assert sorted((r.kind.value, len(r.roots)) for r in readings) == [("anchors", 1), ("nss", 1), ("nss", 1)]
    db = tmp_path / "etc/pki/nssdb"
    again = read_stores([db / "cert9.db", db / "key4.db", db / "pkcs11.txt", db])
    assert [r.kind for r in again] == [StoreKind.NSS]


@pytest.mark.parametrize(
    ("kind", "name", "content", "reason"),
    [
        (StoreKind.SYSTEM, "etc/ssl/certs/ca-certificates.crt", b"", "system: empty file"),
        (
            StoreKind.SYSTEM,
            "etc/ssl/certs/ca-certificates.crt",
            b"hello",
            "system: neither a PEM certificate nor DER",
        ),
        (
            StoreKind.CERTIFI,
            "certifi/cacert.pem",
            b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
            "certifi: no PEM certificate block parses",
        ),
        (
            StoreKind.ANCHORS,
            "anchors/x.crt",
            b"\x30\x03\x02\x01\x01",
            "anchors: DER data that is no certificate",
        ),
        (StoreKind.JAVA, "java/cacerts", b"\xfe\xed\xfe\xed\x00\x00", "JKS keystore does not parse"),
        (StoreKind.JAVA, "java/cacerts", b"garbage", "neither a JKS nor a PKCS#12 keystore"),
    ],
)
def test_malformed_stores_give_a_precise_reason(
    tmp_path: Path, kind: StoreKind, name: str, content: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    reading = read_store(kind, path)
    assert reading.roots == ()
    assert reading.error is not None and reading.error.startswith(reason)


def test_a_pkcs12_no_password_opens_says_so(tmp_path: Path, pkis: tuple[Pki, Pki]) -> None:
    alpha, _ = pkis
    store = tmp_path / "security/cacerts"
    store.parent.mkdir(parents=True)
    (tmp_path / "a.pem").write_bytes(pem(alpha.root.cert))
    subprocess.run(
        ["keytool", "-importcert", "-noprompt", "-keystore", str(store), "-storetype", "PKCS12",
         "-storepass", "s3cret-not-default", "-alias", "a", "-file", str(tmp_path / "a.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    assert read_store(StoreKind.JAVA, store).error == (
        "PKCS#12 keystore: no password opens it (tried none, empty, changeit and the scan's)"
    )
    assert (
        read_store(StoreKind.JAVA, store, [b"s3cret-not-default"]).roots[0].subject == alpha.root.cert.subject
    )


def test_a_folder_that_is_no_nss_database_gives_certutils_reason(tmp_path: Path) -> None:
    (tmp_path / "cert9.db").write_bytes(b"not sqlite at all")
    reading = read_store(StoreKind.NSS, tmp_path)
    assert reading.error is not None and reading.error.startswith("certutil failed: ")


def test_nss_listing_parses_nicknames_with_spaces() -> None:
    text = (
        "\nCertificate Nickname                                         Trust Attributes\n"
        "                                                             SSL,S/MIME,JAR/XPI\n\n"
        "Corp Root CA 2024                                            CT,C,C\n"
        "an intermediate                                              c,,\n"
    )
    entries = parse_listing(text)
    assert [(e.nickname, e.flags, e.trusted) for e in entries] == [
        ("Corp Root CA 2024", "CT,C,C", True),
        ("an intermediate", "c,,", False),
    ]


def test_a_listing_line_without_flags_is_named() -> None:
    with pytest.raises(NssError, match=r"certutil listing line 2 has no trust flags: 'what is this'"):
        parse_listing("\nwhat is this\n")


def test_this_pythons_certifi_is_a_well_known_store() -> None:
    import certifi

    assert Path(certifi.where()).resolve() in {p.resolve() for p in well_known_stores()}
