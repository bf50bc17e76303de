"""The SCEP ledger writes a SCEP transaction's row and its challenge's use in the serial's
own transaction: within one batch and across connections (two workers, PostgreSQL), one
transactionID reserves one serial, and a challenge's last use is taken by one request. A
request refused there writes nothing. The standard ledger refuses an annex it cannot write."""

from __future__ import annotations

import datetime as dt
import secrets

import pytest

from certfleet.access.scep import CHALLENGE_USED_UP, REPLAYED, ScepClaim, ScepTransaction, TransactionStatus
from certfleet.app import Platform
from certfleet.lifecycle.issuance import ClaimOutcome, ClaimResult, SerialClaim
from certfleet.store._issuance_ledger import SqlIssuanceLedger
from certfleet.store._scep_ledger import SqlScepLedger
from tests.services.snapshot import rows
from tests.store._threads import run_together


def _challenge(platform: Platform, uses: int) -> str:
    return platform.scep.create_challenge("ops", actor="t", uses=uses).challenge.id


def _claim(platform: Platform, transaction_id: str, challenge_id: str | None) -> SerialClaim:
    now = platform.clock.now()
    transaction = ScepTransaction(
        transaction_id, TransactionStatus.ISSUING, "ops", "tls-client", challenge_id, None,
        b"csr", None, None, now, now,
    )  # fmt: skip
    return SerialClaim(
        serial=secrets.token_hex(16),
        issuer_ca_id=platform.authorities.issuing_authority().issuer.id,
        issuer_must_be_active=False,
        spki_sha256=secrets.token_hex(32),
        at=now,
        annex=ScepClaim(transaction, challenge_id),
    )


def _state(platform: Platform, challenge_id: str) -> tuple[int, int, int]:
    """(uses left, SCEP transaction rows, serials reserved)."""
    ((uses,),) = rows(
        platform.database, "SELECT uses_left FROM scep_challenges WHERE id = :i", i=challenge_id
    )
    ((transactions,),) = rows(platform.database, "SELECT count(*) FROM scep_transactions")
    ((serials,),) = rows(platform.database, "SELECT count(*) FROM serials WHERE state = 'reserved'")
    return uses, transactions, serials


def _outcomes(results: list[ClaimResult]) -> list[tuple[ClaimOutcome, str | None]]:
    return sorted(((r.outcome, r.refusal) for r in results), key=lambda r: r[0].value, reverse=True)


def test_one_transaction_id_twice_in_a_batch_reserves_one_serial_and_spends_one_use(
    platform: Platform,
) -> None:
    challenge = _challenge(platform, uses=5)
    ledger = SqlScepLedger(platform.database)
    results = ledger.claim_serials([_claim(platform, "tx-1", challenge), _claim(platform, "tx-1", challenge)])
    assert [(r.outcome, r.refusal) for r in results] == [
        (ClaimOutcome.RESERVED, None),
        (ClaimOutcome.ANNEX_REFUSED, REPLAYED),
    ]
    assert _state(platform, challenge) == (4, 1, 1)


def test_a_challenges_last_use_claimed_twice_in_a_batch_issues_once_and_keeps_no_row_of_the_other(
    platform: Platform,
) -> None:
    challenge = _challenge(platform, uses=1)
    ledger = SqlScepLedger(platform.database)
    results = ledger.claim_serials([_claim(platform, "tx-a", challenge), _claim(platform, "tx-b", challenge)])
    assert [(r.outcome, r.refusal) for r in results] == [
        (ClaimOutcome.RESERVED, None),
        (ClaimOutcome.ANNEX_REFUSED, CHALLENGE_USED_UP),
    ]
    assert _state(platform, challenge) == (0, 1, 1)
    assert rows(platform.database, "SELECT transaction_id FROM scep_transactions") == [("tx-a",)]


@pytest.mark.parametrize("same_transaction", [True, False], ids=["replay", "last-use"])
def test_two_connections_racing_for_one_transaction_id_or_the_last_use_reserve_one_serial(
    platform: Platform, same_transaction: bool
) -> None:
    challenge = _challenge(platform, uses=1)

    def claim() -> ClaimResult:
        transaction_id = "tx-race" if same_transaction else f"tx-{secrets.token_hex(4)}"
        (result,) = SqlScepLedger(platform.database).claim_serials(
            [_claim(platform, transaction_id, challenge)]
        )
        return result

    # Two threads, each with a ledger (and so connections) of its own, as two serving
    # processes would run it.
    results = run_together(2, claim).results
    refusal = REPLAYED if same_transaction else CHALLENGE_USED_UP
    assert _outcomes(results) == [(ClaimOutcome.RESERVED, None), (ClaimOutcome.ANNEX_REFUSED, refusal)]
    assert _state(platform, challenge) == (0, 1, 1)


def test_an_expired_challenge_spends_nothing_and_keeps_no_row(platform: Platform) -> None:
    challenge = _challenge(platform, uses=3)
    platform.clock.advance(dt.timedelta(days=8))  # past the default week
    (result,) = SqlScepLedger(platform.database).claim_serials([_claim(platform, "tx-late", challenge)])
    assert (result.outcome, result.refusal) == (ClaimOutcome.ANNEX_REFUSED, CHALLENGE_USED_UP)
    assert _state(platform, challenge) == (3, 0, 0)


def test_the_standard_ledger_refuses_an_annex_and_writes_nothing(platform: Platform) -> None:
    challenge = _challenge(platform, uses=1)
    with pytest.raises(TypeError, match="cannot write a ScepClaim"):
        SqlIssuanceLedger(platform.database).claim_serials([_claim(platform, "tx-rest", challenge)])
    assert _state(platform, challenge) == (1, 0, 0)
