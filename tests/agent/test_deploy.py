"""Safe deployment on a real file system: one symlink switch, never a mismatched or empty
file, old files untouched on a write error, targets kept inside the allowed directories."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from certfleet.agent.config import FileTarget
from certfleet.agent.deploy import STORE_DIR, VersionStore
from certfleet.agent.errors import UnsafeTarget, WriteFailed
from certfleet.agent.targets import Material, render_all
from certfleet.x509 import fingerprint_sha256, load_certificates
from tests.agent.material import ThrowawayCa, spec_for

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def ca() -> ThrowawayCa:
    return ThrowawayCa()


def deployed_pair(key_path: Path, cert_path: Path) -> tuple[str, bool]:
    """The deployed certificate's fingerprint, and whether the key at the other path is its key."""
    cert = load_certificates(cert_path.read_bytes())[0]
    key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    return fingerprint_sha256(cert), key.public_key() == cert.public_key()


def deploy(store: VersionStore, material: Material) -> None:
    store.deploy(render_all(store.spec, material), material.fingerprint[:12])
    store.finish()


def test_first_deployment_links_every_target_into_the_current_version(
    tmp_path: Path, ca: ThrowawayCa
) -> None:
    spec = spec_for(tmp_path)
    store = VersionStore(spec, (tmp_path,), NOW)
    material = ca.issue()
    deploy(store, material)
    key, crt = tmp_path / "www.key", tmp_path / "www.crt"
    assert os.readlink(key) == str(tmp_path / STORE_DIR / "www" / "current" / "key.pem")
    assert deployed_pair(key, crt) == (material.fingerprint, True)
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(crt).st_mode) == 0o644
    assert len(load_certificates(crt.read_bytes())) == 2  # leaf and chain
    assert not (store.root / "pending").exists()
    current = store.material()
    assert current is not None
    assert (current.fingerprint, current.key_pem()) == (material.fingerprint, material.key_pem())


def test_a_renewal_switches_key_and_certificate_together(tmp_path: Path, ca: ThrowawayCa) -> None:
    store = VersionStore(spec_for(tmp_path), (tmp_path,), NOW)
    first, second = ca.issue(), ca.issue()
    deploy(store, first)
    before = store.current_version()
    deploy(store, second)
    assert deployed_pair(tmp_path / "www.key", tmp_path / "www.crt") == (second.fingerprint, True)
    assert os.readlink(store.previous) == before
    switch = store.pending()
    assert switch is None


def test_existing_files_are_adopted_and_a_rollback_restores_them(tmp_path: Path, ca: ThrowawayCa) -> None:
    old = ca.issue()
    (tmp_path / "www.key").write_bytes(old.key_pem())
    (tmp_path / "www.key").chmod(0o640)
    (tmp_path / "www.crt").write_bytes(old.fullchain_pem)
    store = VersionStore(spec_for(tmp_path), (tmp_path,), NOW)
    new = ca.issue()
    switch = store.deploy(render_all(store.spec, new), "new")
    assert deployed_pair(tmp_path / "www.key", tmp_path / "www.crt") == (new.fingerprint, True)
    assert store.rollback(switch)
    store.finish()
    assert (tmp_path / "www.key").read_bytes() == old.key_pem()
    assert (tmp_path / "www.crt").read_bytes() == old.fullchain_pem
    assert stat.S_IMODE(os.stat(tmp_path / "www.key").st_mode) == 0o640  # mode kept too


def test_an_interrupted_switch_is_found_on_restart(tmp_path: Path, ca: ThrowawayCa) -> None:
    store = VersionStore(spec_for(tmp_path), (tmp_path,), NOW)
    deploy(store, ca.issue())
    switch = store.deploy(render_all(store.spec, ca.issue()), "new")  # no finish(): "killed" here
    again = VersionStore(spec_for(tmp_path), (tmp_path,), NOW)
    assert again.pending() == switch


def test_a_marker_left_before_the_switch_is_dropped(tmp_path: Path, ca: ThrowawayCa) -> None:
    store = VersionStore(spec_for(tmp_path), (tmp_path,), NOW)
    deploy(store, ca.issue())
    (store.root / "pending").write_text('{"version": "v-never-switched", "previous": null}')
    assert store.pending() is None
    assert not (store.root / "pending").exists()


def test_a_foreign_symlink_target_is_refused(tmp_path: Path, ca: ThrowawayCa) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    allowed = tmp_path / "tls"
    allowed.mkdir()
    (elsewhere / "passwd").write_text("root:x:0:0\n")
    (allowed / "www.key").symlink_to(elsewhere / "passwd")
    store = VersionStore(spec_for(allowed), (allowed,), NOW)
    with pytest.raises(UnsafeTarget, match="did not make"):
        store.deploy(render_all(store.spec, ca.issue()), "x")
    assert (elsewhere / "passwd").read_text() == "root:x:0:0\n"
    assert not (allowed / STORE_DIR).exists()


def test_a_directory_that_resolves_outside_the_allowed_dirs_is_refused(
    tmp_path: Path, ca: ThrowawayCa
) -> None:
    allowed = tmp_path / "tls"
    allowed.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (allowed / "sub").symlink_to(outside)
    store = VersionStore(spec_for(allowed / "sub"), (allowed,), NOW)
    with pytest.raises(UnsafeTarget, match="outside the allowed_dirs"):
        store.deploy(render_all(store.spec, ca.issue()), "x")
    assert list(outside.iterdir()) == []


def test_a_symlinked_store_is_refused(tmp_path: Path, ca: ThrowawayCa) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    allowed = tmp_path / "tls"
    allowed.mkdir()
    (allowed / STORE_DIR).symlink_to(outside)
    store = VersionStore(spec_for(allowed), (allowed,), NOW)
    with pytest.raises(UnsafeTarget, match="symlink"):
        store.deploy(render_all(store.spec, ca.issue()), "x")
    assert list(outside.iterdir()) == []


@pytest.fixture
def traversable_dir() -> Iterator[Path]:
    """A directory every user can reach (pytest's tmp_path is under a 0700 directory)."""
    path = Path(tempfile.mkdtemp(prefix="certfleet-agent-test-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def test_owner_group_and_mode_are_set_from_the_first_byte(traversable_dir: Path, ca: ThrowawayCa) -> None:
    if os.geteuid() != 0:
        pytest.fail("this test changes file owners: run the suite as root (CI does)")
    tmp_path = traversable_dir
    spec = spec_for(
        tmp_path,
        key=FileTarget("key", tmp_path / "www.key", 0o640, owner="nobody", group="nogroup"),
        cert=FileTarget("cert", tmp_path / "www.crt", 0o644),
    )
    store = VersionStore(spec, (tmp_path,), NOW)
    deploy(store, ca.issue())
    info = os.stat(tmp_path / "www.key")
    assert stat.S_IMODE(info.st_mode) == 0o640
    assert (info.st_uid, info.st_gid) == (65534, 65534)
    # The service account can read its key through the links (the store is traversable).
    result = subprocess.run(
        ["runuser", "-u", "nobody", "--", "cat", str(tmp_path / "www.key")], capture_output=True
    )
    assert result.returncode == 0 and b"PRIVATE KEY" in result.stdout


def test_old_versions_are_pruned_but_current_and_previous_kept(tmp_path: Path, ca: ThrowawayCa) -> None:
    store = VersionStore(spec_for(tmp_path), (tmp_path,), NOW)
    for _ in range(6):
        deploy(store, ca.issue())
    versions = [p.name for p in store.root.iterdir() if p.name.startswith("v")]
    assert len(versions) == 3
    assert store.current_version() in versions and os.readlink(store.previous) in versions


@pytest.fixture
def tiny_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs: a real file system that really fills up (ENOSPC)."""
    mountpoint = tmp_path / "tiny"
    mountpoint.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mountpoint)], capture_output=True
    )
    if result.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (the suite runs as root in CI): {result.stderr.decode()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=True)


def test_a_full_disk_leaves_the_deployed_files_untouched(tiny_filesystem: Path, ca: ThrowawayCa) -> None:
    store = VersionStore(spec_for(tiny_filesystem), (tiny_filesystem,), NOW)
    old = ca.issue()
    deploy(store, old)
    # Fill the file system: what is left cannot hold a new version.
    with pytest.raises(OSError, match="No space"), (tiny_filesystem / "filler").open("wb", buffering=0) as fh:
        while True:
            fh.write(b"\0" * 1024)
    version = store.current_version()
    with pytest.raises(WriteFailed, match="untouched"):
        store.deploy(render_all(store.spec, ca.issue()), "new")
    assert store.current_version() == version
    assert deployed_pair(tiny_filesystem / "www.key", tiny_filesystem / "www.crt") == (old.fingerprint, True)
    leftovers = [p.name for p in store.root.iterdir() if p.name.startswith(".")]
    assert leftovers == []
    empty = [p for p in tiny_filesystem.rglob("*") if p.is_file() and p.stat().st_size == 0]
    assert empty == []
    # When space returns, the same deployment goes through, and can still be rolled back
    (tiny_filesystem / "filler").unlink()
    new = ca.issue()
    switch = store.deploy(render_all(store.spec, new), "new")
    assert store.current_version() != version
    assert deployed_pair(tiny_filesystem / "www.key", tiny_filesystem / "www.crt") == (new.fingerprint, True)
    store.rollback(switch)
    assert deployed_pair(tiny_filesystem / "www.key", tiny_filesystem / "www.crt") == (old.fingerprint, True)


def test_every_visible_state_of_a_deployment_is_a_matching_pair(
    tmp_path: Path, ca: ThrowawayCa, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The target paths change only at a rename. Check the pair after each one, through
    the paths a service opens: adopting old files, linking targets, the switch itself."""
    old = ca.issue()
    (tmp_path / "www.key").write_bytes(old.key_pem())
    (tmp_path / "www.crt").write_bytes(old.fullchain_pem)
    new = ca.issue()
    seen: list[str] = []
    real_replace = os.replace

    def checked_replace(source: object, destination: object) -> None:
        real_replace(source, destination)  # type: ignore[arg-type]
        fingerprint, matches = deployed_pair(tmp_path / "www.key", tmp_path / "www.crt")
        assert matches, f"mismatched pair after renaming {source} to {destination}"
        seen.append(fingerprint)

    monkeypatch.setattr("certfleet.agent.deploy.os.replace", checked_replace)
    store = VersionStore(spec_for(tmp_path), (tmp_path,), NOW)
    switch = store.deploy(render_all(store.spec, new), "new")
    store.rollback(switch)
    assert set(seen) == {old.fingerprint, new.fingerprint}
    assert seen[0] == old.fingerprint and seen[-1] == old.fingerprint
    assert len(seen) >= 5  # pending marker, current, two targets, switch, previous, rollback
