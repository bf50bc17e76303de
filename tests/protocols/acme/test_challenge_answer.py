"""The answer to a challenge waits a moment for its validation (RFC 8555 section 7.5.1): a
fast validation's result is in the answer itself, so the client's next read of the
authorization settles it instead of a round of polls; a slow one is answered "processing"
and finishes in the background."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from certfleet.protocols.acme.authorizations import Challenge
from certfleet.protocols.acme.validation import ValidationTarget
from tests.protocols.acme.conftest import AcmeHarness, build_harness
from tests.protocols.acme.peers import ChallTestSrv
from tests.protocols.acme.raw import Account, key_authorization


@pytest.fixture
def acme_db(tmp_path: Path, challtestsrv: ChallTestSrv, db_url: str) -> Iterator[AcmeHarness]:
    """On SQLite (nonces in the node's file) and on PostgreSQL (nonces rotated in the
    request's transaction, which commits before the wait)."""
    yield from build_harness(tmp_path, challtestsrv, db_url=db_url)


def _served_challenge(acme: AcmeHarness, account: Account, name: str) -> tuple[str, str, dict[str, Any]]:
    response = acme.client.new_order(account, [name])
    assert response.status_code == 201, response.text
    order_url, authz_url = response.headers["Location"], response.json()["authorizations"][0]
    authz = acme.get(account, authz_url)
    challenge = next(c for c in authz["challenges"] if c["type"] == "http-01")
    acme.http01.tokens[challenge["token"]] = key_authorization(challenge["token"], account.key)
    return order_url, authz_url, challenge


def test_a_fast_validation_is_answered_with_its_result(acme_db: AcmeHarness) -> None:
    # Given a served http-01 answer and a wait long enough for any validation here
    account = acme_db.client.new_account()
    order_url, authz_url, challenge = _served_challenge(acme_db, account, "fast.answer.example.test")
    runner = acme_db.platform.acme.validation
    runner.answer_wait_seconds = 30.0
    # When the client answers the challenge
    response = acme_db.client.post(challenge["url"], {}, account.key, kid=account.kid)
    # Then the answer is the validated challenge, and it was committed: the very next reads
    # of the authorization and the order (from any connection) see them settled
    assert response.status_code == 200, response.text
    answered = response.json()
    assert answered["status"] == "valid", answered
    assert answered["validated"]
    assert response.headers["Replay-Nonce"]
    assert acme_db.get(account, authz_url)["status"] == "valid"
    assert acme_db.get(account, order_url)["status"] == "ready"


def test_a_failed_validation_is_answered_invalid_with_its_problem(acme_db: AcmeHarness) -> None:
    # Given a challenge whose http-01 answer is not served
    account = acme_db.client.new_account()
    order_url, authz_url, challenge = _served_challenge(acme_db, account, "wrong.answer.example.test")
    acme_db.http01.tokens[challenge["token"]] = "not-the-key-authorization"
    acme_db.platform.acme.validation.answer_wait_seconds = 30.0
    # When the client answers it
    response = acme_db.client.post(challenge["url"], {}, account.key, kid=account.kid)
    # Then the answer carries the failure and the order is invalid
    assert response.status_code == 200, response.text
    answered = response.json()
    assert answered["status"] == "invalid", answered
    assert answered["error"]["type"] == "urn:ietf:params:acme:error:incorrectResponse"
    assert acme_db.get(account, authz_url)["status"] == "invalid"
    assert acme_db.get(account, order_url)["status"] == "invalid"


def test_a_slow_validation_is_answered_processing_and_finishes_in_the_background(
    acme_db: AcmeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a validation that cannot finish until the test lets it, and no wait at all
    account = acme_db.client.new_account()
    _, authz_url, challenge = _served_challenge(acme_db, account, "slow.answer.example.test")
    runner = acme_db.platform.acme.validation
    runner.answer_wait_seconds = 0.0
    release, finished = threading.Event(), threading.Event()
    validate_now = runner.validate_now

    def held(challenge_id: str, account_url: str, target: ValidationTarget | None = None) -> Challenge | None:
        assert release.wait(timeout=30)
        return validate_now(challenge_id, account_url, target)

    monkeypatch.setattr(runner, "validate_now", held)
    runner.on_done = lambda _challenge_id: finished.set()
    try:
        # When the client answers the challenge
        response = acme_db.client.post(challenge["url"], {}, account.key, kid=account.kid)
        # Then it is answered at once with "processing", and "processing" is committed
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "processing"
        assert acme_db.get(account, authz_url)["challenges"][0]["status"] == "processing"
        # And once the validation may run, it finishes without another request
        release.set()
        assert finished.wait(timeout=30), "the validation never finished"
    finally:
        release.set()
        runner.on_done = None
    assert acme_db.get(account, authz_url)["status"] == "valid"


def test_the_answer_and_its_validation_read_nothing_twice(acme_db: AcmeHarness) -> None:
    # Given a served http-01 answer and a wait long enough for any validation here
    account = acme_db.client.new_account()
    _, _, challenge = _served_challenge(acme_db, account, "once.answer.example.test")
    acme_db.platform.acme.validation.answer_wait_seconds = 30.0
    engine = acme_db.platform.database.engine
    begins: list[str] = []
    worker_reads: list[str] = []

    def on_begin(_conn: Any) -> None:
        begins.append(threading.current_thread().name)

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if threading.current_thread().name.startswith("acme-validate") and statement.startswith("SELECT"):
            worker_reads.append(statement)

    # When the client answers the challenge
    event.listen(engine, "begin", on_begin)
    event.listen(engine, "before_cursor_execute", on_statement)
    try:
        response = acme_db.client.post(challenge["url"], {}, account.key, kid=account.kid)
    finally:
        event.remove(engine, "begin", on_begin)
        event.remove(engine, "before_cursor_execute", on_statement)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "valid"
    # Then the validation worker opened one transaction, the one recording its result (it
    # was given the authorization and the key's thumbprint the request had read), and the
    # request none after it (the answer is the challenge the worker committed): on
    # PostgreSQL the client's new nonce (an INSERT) and the request's one transaction, on
    # SQLite (nonces in the node's file) a read-only one for the account and one write
    workers = [name for name in begins if name.startswith("acme-validate")]
    assert len(workers) == 1, begins
    assert len(begins) - len(workers) == 2, begins
    # And that transaction read the orders waiting on the authorization, not the
    # authorization it had just made valid
    assert not any("FROM acme_authorizations" in statement for statement in worker_reads), worker_reads
