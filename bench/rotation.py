"""A rotation campaign of 10,000 certificates, end to end, against plain issuance.

Setup (not measured): a SQLite data directory with a P-256 CA and N certificates of the
current issuing CA signed in process and stored in batches (the inventory as issuance leaves
it). Then, in the same process and run:

1. **baseline**: ``IssuanceService.issue`` of 1,000 P-256 certificates one after another: what
   issuing costs here (validate, reserve the serial, sign, store, audit, outbox event);
2. **campaign**: ``certfleet ca rotate`` to a new intermediate, then one campaign selecting all N
   certificates of the old CA, reissuing each for its key from the new CA, recording lineage,
   and revoking each old certificate (``--revoke-old-after 0``, reason superseded): create
   (selection and N items in one transaction), reissue phase, revocation phase.

Run: ``.venv/bin/python bench/rotation.py [--count 10000]`` (about two minutes here).
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

from certfleet.app import open_platform
from certfleet.ca import IssuanceRequest, new_serial_number
from certfleet.clock import SystemClock
from certfleet.config import load_settings
from certfleet.inventory import CertificateRecord, Source
from certfleet.lifecycle.campaigns import CampaignItem, CampaignRequest, ItemState
from certfleet.lifecycle.selection import Selection
from certfleet.x509 import CertificateFacts, KeyType, generate_private_key

BASELINE = 1000


def _fill(platform, count: int) -> None:  # type: ignore[no-untyped-def]
    """N certificates as issuance would leave them (serial recorded, certificate stored)."""
    authority = platform.authorities.issuing_authority()
    keys = [generate_private_key(KeyType.EC_P256) for _ in range(16)]
    now = platform.clock.now()
    for start in range(0, count, 1000):
        records = []
        for i in range(start, min(count, start + 1000)):
            request = IssuanceRequest(
                "tls-server", keys[i % 16].public_key(), (f"n{i}.bench.test",), None, 90
            )
            issued = authority.sign(authority.validate(request), new_serial_number())
            facts = CertificateFacts.of(issued.certificate)
            records.append(
                CertificateRecord.from_facts(
                    facts,
                    source=Source.ISSUED,
                    seen_at=now,
                    issuer_ca_id=issued.issuer_id,
                    profile="tls-server",
                )
            )
        with platform.store.unit_of_work() as uow:
            for record in records:
                uow.serials.reserve(record.serial, authority.issuer.id, now)
                uow.serials.mark_issued(record.serial, record.fingerprint_sha256)
                uow.certificates.add(record)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cf-bench-rotation-") as tmp:
        data = Path(tmp) / "data"
        settings = load_settings({}, data_dir=data)
        platform = open_platform(settings, clock=SystemClock(), create=True)
        try:
            platform.authorities.initialize("Bench", KeyType.EC_P256, actor="bench")
            _fill(platform, args.count)
            key = generate_private_key(KeyType.EC_P256)
            started = time.perf_counter()
            for i in range(BASELINE):
                request = IssuanceRequest("tls-server", key.public_key(), (f"b{i}.bench.test",), None, 90)
                platform.issuance.issue(request, actor="bench")
            baseline = BASELINE / (time.perf_counter() - started)

            old_ca = platform.authorities.issuing_authority().issuer.id
            new_ca = platform.ca_rotation.rotate(None, actor="bench").new_ca.id
            request = CampaignRequest(
                Selection.parse(f"ca={old_ca},name=n*.bench.test"),
                to_ca=new_ca,
                revoke_old_after=dt.timedelta(0),
            )
            started = time.perf_counter()
            campaign = platform.rotation.create(request, actor="bench")
            created = time.perf_counter() - started
            marks: dict[str, float] = {}

            def progress(item: CampaignItem, state: ItemState) -> None:
                marks["last_reissue"] = time.perf_counter()

            started = time.perf_counter()
            report = platform.rotation.run(campaign.id, progress=progress)
            ended = time.perf_counter()
        finally:
            platform.close()
    counts = report.counts
    assert counts.of(ItemState.REISSUED) == counts.old_revoked == args.count, counts
    reissue = marks["last_reissue"] - started
    revoke = ended - marks["last_reissue"]
    total = created + (ended - started)
    print(f"{args.count:,} certificates, P-256, SQLite; same key, new issuing CA, old ones revoked")
    print(f"{'step':<34} {'seconds':>8} {'certs/s':>9} {'vs issue':>9}")
    print(
        f"{'baseline: issue (1,000, in process)':<34} {BASELINE / baseline:>8.2f} {baseline:>9.1f} {1:>8.2f}x"
    )
    for name, seconds in (
        ("campaign create (selection+items)", created),
        ("reissue phase", reissue),
        ("revocation phase", revoke),
        ("campaign end to end", total),
    ):
        rate = args.count / seconds
        print(f"{name:<34} {seconds:>8.2f} {rate:>9.1f} {rate / baseline:>8.2f}x")
    print(f"campaign {report.campaign.status.value}: {counts.to_dict()}")


if __name__ == "__main__":
    main()
