"""The inventory page: every filter, keyset pagination in each sort order (each row once, in
order, on SQLite and PostgreSQL), the CSV export of the current filter, and precise 400s."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re

import pytest

from certfleet.app import Platform
from certfleet.inventory import CertificateRecord, Source, Status
from certfleet.x509 import KeyType, fingerprint_sha256
from tests.lifecycle.fleet import est_enrol, scep_enrol
from tests.web.conftest import Browser, day, issue

_ROW = re.compile(r'<a href="/certificates/([0-9a-f]{64})">')
_NEXT = re.compile(r'<a href="([^"]+)" rel="next"')


def synthetic(
    platform: Platform,
    n: int,
    *,
    start: dt.datetime,
    team: str = "ops",
    status: Status = Status.ACTIVE,
    source: Source = Source.DISCOVERED,
    names: list[str] | None = None,
) -> list[CertificateRecord]:
    """Rows written straight through the repository (no signing): what a big scan leaves."""
    out = []
    with platform.store.unit_of_work() as uow:
        for i in range(n):
            cn = names[i] if names else f"host{i:04d}.bulk.example.test"
            fp = hashlib.sha256(f"{team}{status}{source}{cn}{i}{start}".encode()).hexdigest()
            record = CertificateRecord(
                serial=fp[:20].lstrip("0") or "1",
                fingerprint_sha256=fp,
                subject=f"CN={cn}",
                common_name=cn,
                sans=(cn,),
                issuer="CN=Outside CA,O=Elsewhere",
                not_before=start - dt.timedelta(days=30),
                not_after=start + dt.timedelta(hours=7 * (i % 50), minutes=i),  # ties in hours, not minutes
                key_algorithm="rsa",
                key_size=2048,
                signature_algorithm="sha256WithRSAEncryption",
                source=source,
                status=status,
                first_seen=start,
                last_seen=start,
                der=b"\x00",
                team=team,
            )
            out.append(uow.certificates.add(record))
    return out


def _walk(browser: Browser, url: str) -> list[str]:
    """Follow 'Next page' to the end; return the fingerprints in page order."""
    seen: list[str] = []
    pages = 0
    while url:
        page = browser.get(url)
        assert page.status_code == 200, page.text
        seen += _ROW.findall(page.text)
        found = _NEXT.search(page.text)
        url = found.group(1).replace("&amp;", "&") if found else ""
        pages += 1
        assert pages < 100
    return seen


@pytest.mark.parametrize(
    ("sort", "order"),
    [("expires", "asc"), ("expires", "desc"), ("name", "asc"), ("name", "desc"), ("seen", "desc")],
)
def test_pagination_visits_every_row_once_in_order(
    admin_browser: Browser, platform: Platform, sort: str, order: str
) -> None:
    now = platform.clock.now()
    rows = synthetic(platform, 130, start=now + dt.timedelta(days=1))
    seen = _walk(admin_browser, f"/certificates?sort={sort}&order={order}&per_page=25&source=discovered")
    assert sorted(seen) == sorted(r.fingerprint_sha256 for r in rows)  # each once, none missing
    key = {
        "expires": lambda r: (r.not_after, r.id),
        "name": lambda r: (r.common_name or "", r.id),
        "seen": lambda r: (r.id,),
    }[sort]
    expected = [r.fingerprint_sha256 for r in sorted(rows, key=key, reverse=order == "desc")]
    assert seen == expected


def test_filters_narrow_the_inventory(admin_browser: Browser, platform: Platform) -> None:
    now = platform.clock.now()
    soon = issue(platform, "soon.example.test", days=5)
    later = issue(platform, "later.example.test", days=60, team="web", key=KeyType.RSA_2048)
    revoked = synthetic(
        platform, 1, start=now + dt.timedelta(days=3), status=Status.REVOKED, names=["gone.example.test"]
    )[0]
    expired = synthetic(platform, 1, start=now - dt.timedelta(days=40), names=["old.example.test"])[0]

    def listed(query: str) -> set[str]:
        page = admin_browser.get(f"/certificates?{query}")
        assert page.status_code == 200, page.text
        return set(_ROW.findall(page.text))

    fp = {r.sans[0]: r.fingerprint_sha256 for r in (soon, later, revoked, expired)}
    assert listed("expiring=7") == {fp["soon.example.test"]}
    assert listed("status=revoked") == {fp["gone.example.test"]}
    assert listed("status=expired") == {fp["old.example.test"]}
    assert listed("status=active") == {fp["soon.example.test"], fp["later.example.test"]}
    assert listed("team=web") == {fp["later.example.test"]}
    assert listed("key=rsa-2048&source=issued") == {fp["later.example.test"]}
    assert listed("q=lat") == {fp["later.example.test"]}  # a name prefix
    assert listed(f"q={soon.serial}") == {fp["soon.example.test"]}
    assert listed(f"q={later.fingerprint_sha256.upper()}") == {fp["later.example.test"]}
    assert listed(f"issuer={soon.issuer_ca_id}") == {fp["soon.example.test"], fp["later.example.test"]}
    assert listed("issuer=CN%3DOutside+CA%2CO%3DElsewhere") == {
        fp["gone.example.test"],
        fp["old.example.test"],
    }
    window = (
        f"expires_after={day(now + dt.timedelta(days=2))}&expires_before={day(now + dt.timedelta(days=30))}"
    )
    assert listed(window) == {fp["soon.example.test"], fp["gone.example.test"]}


def test_location_filter_finds_where_a_scan_saw_it(
    admin_browser: Browser, platform: Platform, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from certfleet.services.discovery import FileScanRequest

    record = issue(platform, "seen.example.test")
    issue(platform, "unseen.example.test")
    folder = tmp_path_factory.mktemp("etc-ssl")
    (folder / "site.pem").write_bytes(
        record.certificate().public_bytes(
            __import__("cryptography").hazmat.primitives.serialization.Encoding.PEM
        )
    )
    platform.discovery.scan_files(FileScanRequest((str(folder),)), actor="test")
    page = admin_browser.get(f"/certificates?location={folder.name}")
    assert set(_ROW.findall(page.text)) == {record.fingerprint_sha256}


def test_csv_export_streams_the_current_filter(admin_browser: Browser, platform: Platform) -> None:
    now = platform.clock.now()
    rows = synthetic(platform, 2500, start=now + dt.timedelta(days=2))  # more than one export chunk
    synthetic(platform, 3, start=now + dt.timedelta(days=2), team="web")
    evil = synthetic(platform, 1, start=now + dt.timedelta(days=2), team="ops", names=["=HYPERLINK(1)"])[0]
    response = admin_browser.get("/certificates.csv?team=ops&source=discovered")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith('attachment; filename="certificates-')
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert len(table) == len(rows) + 1
    assert {r["fingerprint_sha256"] for r in table} == {r.fingerprint_sha256 for r in [*rows, evil]}
    assert {r["team"] for r in table} == {"ops"}
    by_fp = {r["fingerprint_sha256"]: r for r in table}
    assert by_fp[evil.fingerprint_sha256]["common_name"] == "'=HYPERLINK(1)"  # no formula runs
    assert by_fp[rows[0].fingerprint_sha256]["status"] == "active"
    not_afters = [r["not_after"] for r in table]
    assert not_afters == sorted(not_afters)


def test_the_page_counts_matches_but_stops_at_the_cap(admin_browser: Browser, platform: Platform) -> None:
    synthetic(platform, 60, start=platform.clock.now() + dt.timedelta(days=1))
    page = admin_browser.get("/certificates?per_page=25")
    assert 'data-testid="match-count">60<' in page.text
    assert len(_ROW.findall(page.text)) == 25


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("status=dead", "status must be one of"),
        ("expiring=soon", "expiring must be a number"),
        ("expires_after=31-12-2026", "expires_after must be a date"),
        ("key=rsa2048", "key must look like"),
        ("per_page=7", "per_page must be one of"),
        ("sort=colour", "sort must be one of"),
        ("cursor=!!!", "malformed pagination cursor"),
    ],
)
def test_bad_parameters_are_a_precise_400(admin_browser: Browser, query: str, detail: str) -> None:
    page = admin_browser.get(f"/certificates?{query}")
    assert page.status_code == 400
    assert detail in page.text
    assert "Traceback" not in page.text


def test_a_cursor_of_another_sort_order_is_refused(admin_browser: Browser, platform: Platform) -> None:
    synthetic(platform, 30, start=platform.clock.now() + dt.timedelta(days=1))
    first = admin_browser.get("/certificates?per_page=25&sort=name")
    cursor = _NEXT.search(first.text).group(1).split("cursor=")[1]  # type: ignore[union-attr]
    assert admin_browser.get(f"/certificates?per_page=25&sort=expires&cursor={cursor}").status_code == 400


def test_device_enrolments_are_in_the_inventory_with_their_source_and_team(
    admin_browser: Browser, platform: Platform
) -> None:
    # Given a certificate enrolled over SCEP, one over EST and one issued over REST
    printer = scep_enrol(platform, "printer.example.test")[0]
    plc = est_enrol(platform, "plc.example.test")
    rest = issue(platform, "rest.example.test")
    fp = {"scep": fingerprint_sha256(printer), "est": fingerprint_sha256(plc)}

    def listed(query: str) -> set[str]:
        page = admin_browser.get(f"/certificates?{query}")
        assert page.status_code == 200, page.text
        return set(_ROW.findall(page.text))

    # Then the source filter finds each, the team filter its challenge's or credential's team
    assert listed("source=scep") == {fp["scep"]}
    assert listed("source=est") == {fp["est"]}
    assert listed("team=devices") == {fp["scep"]} and listed("team=lab") == {fp["est"]}
    assert rest.fingerprint_sha256 in listed("source=issued")
    # ... and its page names where it came from
    page = admin_browser.get(f"/certificates/{fp['scep']}")
    assert page.status_code == 200 and "team devices · scep" in page.text
    page = admin_browser.get(f"/certificates/{fp['est']}")
    assert page.status_code == 200 and "team lab · est" in page.text
