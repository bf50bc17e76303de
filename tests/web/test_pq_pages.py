"""The dashboard shows ML-DSA certificates honestly (issue 17): the inventory filters by
``key=ml-dsa-65``, and a certificate's page gives its key and signature sizes and its size."""

from __future__ import annotations

import html
import re

from certfleet.app import Platform
from certfleet.ca import IssuanceRequest
from certfleet.x509 import KeyType, generate_private_key
from tests.web.conftest import Browser, issue

_ROW = re.compile(r'<a href="/certificates/([0-9a-f]{64})">')


def test_the_inventory_filters_ml_dsa_and_the_page_shows_its_sizes(
    admin_browser: Browser, platform: Platform
) -> None:
    platform.authorities.create_hierarchy("PQ Root", KeyType.ML_DSA_65, actor="test")
    key = generate_private_key(KeyType.ML_DSA_65)
    request = IssuanceRequest("internal-mtls-pq", key.public_key(), ("svc.pq.example.test",))
    pq = platform.issuance.issue(request, actor="test", team="ops").record
    classic = issue(platform, "w.example.test")

    listed = admin_browser.get("/certificates?key=ml-dsa-65")

    assert listed.status_code == 200
    assert _ROW.findall(listed.text) == [pq.fingerprint_sha256]
    assert classic.fingerprint_sha256 not in listed.text
    page = html.unescape(admin_browser.get(f"/certificates/{pq.fingerprint_sha256}").text)
    assert "ml-dsa-65 (1,952-byte key, 3,309-byte signatures; not quantum-vulnerable)" in page
    assert f"{len(pq.der):,} bytes (DER)" in page
    assert "ML-DSA-65" in page  # the signature algorithm


def test_an_unknown_parameter_set_is_a_precise_400(admin_browser: Browser) -> None:
    response = admin_browser.get("/certificates?key=ml-dsa-128")
    assert response.status_code == 400
    assert "key must look like rsa-2048, ec-p256, ed25519 or ml-dsa-65" in html.unescape(response.text)
