from __future__ import annotations

from pathlib import Path

from certfleet.discovery import CertificatePool, ChainAnalyzer, is_self_signed, load_system_anchors
from certfleet.discovery.trust import issued_by, system_bundle_path
from tests.discovery.pki import Pki


def test_complete_chain_to_an_anchor() -> None:
    pki = Pki()
    leaf = pki.leaf(["a.test"]).cert
    verdict = ChainAnalyzer(CertificatePool([pki.root.cert])).analyse([leaf, pki.intermediate.cert])
    assert (verdict.trusted, verdict.missing, verdict.self_signed_leaf) == (True, (), False)
    assert verdict.path == (leaf, pki.intermediate.cert, pki.root.cert)


def test_missing_intermediate_found_in_the_pool_is_named() -> None:
    pki = Pki()
    leaf = pki.leaf(["a.test"]).cert
    analyzer = ChainAnalyzer(CertificatePool([pki.root.cert]), CertificatePool([pki.intermediate.cert]))
    verdict = analyzer.analyse([leaf])
    assert verdict.trusted
    assert verdict.missing == (pki.intermediate.cert,)
    # Without the pool the issuer is simply unknown: untrusted, not "incomplete".
    alone = ChainAnalyzer(CertificatePool([pki.root.cert])).analyse([leaf])
    assert (alone.trusted, alone.missing) == (False, ())


def test_an_intermediate_anchor_not_sent_is_still_missing() -> None:
    """certfleet's own intermediate is an anchor, but clients only have the root."""
    pki = Pki()
    leaf = pki.leaf(["a.test"]).cert
    verdict = ChainAnalyzer(CertificatePool([pki.root.cert, pki.intermediate.cert])).analyse([leaf])
    assert verdict.trusted and verdict.missing == (pki.intermediate.cert,)


def test_self_signed_and_forged_issuers() -> None:
    pki, impostor = Pki("Same"), Pki("Same")  # same names, different keys
    leaf = pki.leaf(["a.test"]).cert
    assert is_self_signed(pki.root.cert) and not is_self_signed(leaf)
    assert not issued_by(leaf, impostor.intermediate.cert)  # a name match is not a signature
    verdict = ChainAnalyzer(CertificatePool([impostor.root.cert])).analyse([leaf, impostor.intermediate.cert])
    assert not verdict.trusted
    own = pki.leaf(["a.test"], self_signed=True).cert
    assert ChainAnalyzer(CertificatePool()).analyse([own]).self_signed_leaf


def test_sha1_chains_are_followed(tmp_path: Path) -> None:
    pki = Pki()
    leaf = pki.sha1_leaf(["a.test"], tmp_path).cert
    assert issued_by(leaf, pki.intermediate.cert)
    assert ChainAnalyzer(CertificatePool([pki.root.cert])).analyse([leaf, pki.intermediate.cert]).trusted


def test_system_trust_store_loads() -> None:
    path = system_bundle_path()
    assert path is not None and path.is_file()
    anchors = load_system_anchors()
    assert len(anchors) > 50
    assert all(a.subject for a in anchors)
