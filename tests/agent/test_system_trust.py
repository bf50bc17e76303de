"""``trust_store: system``: certfleet's roots in the host's store through the real
``update-ca-certificates``, pointed at a folder tree of the test's own (its --certsconf,
--certsdir, --localcertsdir, --etccertsdir and --hooksdir options), so the machine's own
trust is never touched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from certfleet.agent._trust_config import TrustSettings
from certfleet.agent.system_trust import SystemTrustStore, TrustStoreUpdateFailed
from certfleet.x509 import load_certificates
from tests.discovery.pki import Pki, pem


def _host(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    """Given a host tree: its own anchor (not ours) and an empty distribution store."""
    conf = tmp_path / "etc/ca-certificates.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("# no distribution certificates selected\n")
    for folder in ("usr/share/ca-certificates", "usr/local/share/ca-certificates", "etc/ssl/certs", "hooks"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    anchors = tmp_path / "usr/local/share/ca-certificates"
    (anchors / "corp.crt").write_bytes(pem(Pki("Corp").root.cert))
    command = [
        "update-ca-certificates", "--fresh",
        "--certsconf", str(conf),
        "--certsdir", str(tmp_path / "usr/share/ca-certificates"),
        "--localcertsdir", str(anchors),
        "--etccertsdir", str(tmp_path / "etc/ssl/certs"),
        "--hooksdir", str(tmp_path / "hooks"),
    ]  # fmt: skip
    return anchors, tmp_path / "etc/ssl/certs/ca-certificates.crt", command


def _bundle(path: Path) -> set[str]:
    return {c.subject.rfc4514_string() for c in load_certificates(path.read_bytes())}


def test_roots_are_added_then_replaced_and_the_hosts_own_kept(tmp_path: Path) -> None:
    anchors, bundle, command = _host(tmp_path)
    store = SystemTrustStore(TrustSettings(system=True, anchors_dir=anchors, update_command=tuple(command)))
    old, new = Pki("Old"), Pki("New")

    first = store.sync([old.root.cert])
    assert first.changed and len(first.added) == 1 and first.added[0].startswith("certfleet-")
    assert _bundle(bundle) == {"CN=Corp Root", "CN=Old Root"}
    assert oct((anchors / first.added[0]).stat().st_mode & 0o777) == "0o644"
    assert not store.sync([old.root.cert]).changed  # nothing to do: the command does not run

    # When certfleet publishes an incoming root beside the current one, then only the new one
    store.sync([old.root.cert, new.root.cert])
    assert _bundle(bundle) == {"CN=Corp Root", "CN=Old Root", "CN=New Root"}
    last = store.sync([new.root.cert])
    assert last.removed == first.added
    assert _bundle(bundle) == {"CN=Corp Root", "CN=New Root"}
    assert sorted(p.name for p in anchors.iterdir()) == sorted(
        ["corp.crt", *last.added, *store.current()][:2]
    )


def test_a_failed_update_puts_the_previous_roots_back(tmp_path: Path) -> None:
    anchors, bundle, command = _host(tmp_path)
    old, refused = Pki("Old"), Pki("Refused")
    # A site's update wrapper that refuses the Refused root (as a policy hook would)
    wrapper = tmp_path / "update-wrapper"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"if grep -q '{pem(refused.root.cert).decode().splitlines()[1]}' {anchors}/certfleet-*.crt; then\n"
        "  echo 'E: this root is not allowed here' >&2; exit 3\nfi\n"
        f"exec {' '.join(command)}\n"
    )
    wrapper.chmod(0o755)
    store = SystemTrustStore(TrustSettings(system=True, anchors_dir=anchors, update_command=(str(wrapper),)))
    store.sync([old.root.cert])
    before = store.current()

    with pytest.raises(TrustStoreUpdateFailed) as failed:
        store.sync([refused.root.cert])
    assert failed.value.detail == f"{wrapper} failed (exit 3): E: this root is not allowed here"
    assert store.current() == before
    assert _bundle(bundle) == {"CN=Corp Root", "CN=Old Root"}


def test_a_command_that_cannot_run_is_named_and_nothing_stays_half_written(tmp_path: Path) -> None:
    anchors, _, _ = _host(tmp_path)
    missing = str(tmp_path / "no-such-command")
    store = SystemTrustStore(TrustSettings(system=True, anchors_dir=anchors, update_command=(missing,)))
    with pytest.raises(TrustStoreUpdateFailed, match=r"no-such-command could not run: .*No such file"):
        store.sync([Pki("Any").root.cert])
    assert store.current() == {} and os.listdir(anchors) == ["corp.crt"]
