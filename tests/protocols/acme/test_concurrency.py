"""At most one certificate per order, whatever the number of concurrent finalize requests."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.protocols.acme.conftest import AcmeHarness


def test_two_concurrent_finalizes_yield_one_certificate(acme: AcmeHarness) -> None:
    account = acme.client.new_account()
    name = "race.example.test"
    _, order = acme.ready_order(account, [name])
    before = acme.count("certificates")
    barrier = threading.Barrier(2)

    def finalize(_: int) -> Any:
        barrier.wait()
        return acme.finalize(account, order, [name])

    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(finalize, range(2)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 403], [r.text for r in responses]
    loser = next(r for r in responses if r.status_code == 403)
    assert loser.json()["type"].endswith(":orderNotReady")
    assert acme.count("certificates") == before + 1
