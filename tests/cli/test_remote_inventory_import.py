"""``certfleet inventory import`` against a real ``certfleet serve``: one line per file in
the order given (bad and unreadable files reported, not fatal, exit 1), the same lines as
local mode, batches under the endpoint's body bound, and a narrow token refused with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.api.test_inventory_import_api import foreign_pem
from tests.cli.remote import RemoteCli


def _files(tmp_path: Path, prefix: str) -> list[Path]:
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(foreign_pem(f"{prefix}-a.example.test") + foreign_pem(f"{prefix}-b.example.test"))
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"not a certificate")
    single = tmp_path / "single.pem"
    single.write_bytes(foreign_pem(f"{prefix}-c.example.test"))
    return [bundle, junk, tmp_path / "missing.pem", single]


@pytest.mark.parametrize("batch_bytes", [None, 1])
def test_import_remotely_as_locally(
    remote_cli: RemoteCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch_bytes: int | None
) -> None:
    if batch_bytes is not None:  # every file in a request of its own: still one line each, in order
        monkeypatch.setattr("certfleet.cli.inventory_import.BATCH_BYTES", batch_bytes)
    bundle, junk, missing, single = files = _files(tmp_path, f"import{batch_bytes}")
    args = ["inventory", "import", *map(str, files), "--team", "imports"]
    first = remote_cli(*args)
    assert first.exit_code == 1
    assert first.stdout == f"{bundle}: 2 added, 0 already known\n{single}: 1 added, 0 already known\n"
    assert first.stderr.splitlines()[0].startswith(f"{junk}: not a valid PEM or DER certificate")
    assert first.stderr.splitlines()[1] == f"{missing}: cannot read: No such file or directory"

    remote, local = remote_cli(*args), remote_cli.local(*args)
    assert (remote.exit_code, remote.stdout, remote.stderr) == (local.exit_code, local.stdout, local.stderr)
    assert remote.stdout == f"{bundle}: 0 added, 2 already known\n{single}: 0 added, 1 already known\n"

    listed = json.loads(remote_cli("inventory", "list", "--team", "imports", "--format", "json").stdout)
    assert {c["common_name"] for c in listed} >= {f"import{batch_bytes}-{x}.example.test" for x in "abc"}
    assert {c["source"] for c in listed} == {"imported"}


def test_a_narrow_token_cannot_import(remote_cli: RemoteCli, tmp_path: Path) -> None:
    created = remote_cli.local(
        "token", "create", "--team", "web", "--scope", "issue", "--allow-names", "*.example.test"
    )
    narrow = created.stdout.strip().splitlines()[-1]
    bundle = _files(tmp_path, "narrow")[0]
    refused = remote_cli("inventory", "import", str(bundle), token=narrow)
    assert (refused.exit_code, refused.stdout, refused.stderr) == (
        2,
        "",
        "error: this token has scope issue; admin is required\n",
    )
