"""Answering OCSP requests (RFC 6960) from pre-signed responses where possible."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Generic

from cryptography.x509 import ocsp

from certfleet.clock import Clock
from certfleet.revocation._issuers import CaT, CertId, IssuerIndex
from certfleet.revocation._memory import MEMORY_ENTRIES, AnswerMemory
from certfleet.revocation._ocsp_request import parse_ocsp_request
from certfleet.revocation._ocsp_response import (
    CertStatus,
    ResponseSigner,
    SingleAnswer,
    build_response,
    error_response,
)
from certfleet.revocation._ports import CachedResponse, RevocationStore
from certfleet.revocation._published import Published, refresh_at
from certfleet.revocation._settings import RevocationSettings
from certfleet.revocation.errors import MalformedOcspRequest

__all__ = ["OcspResponder"]


def _hex(serial_number: int) -> str:
    return format(serial_number, "x")


class OcspResponder(Generic[CaT]):
    """Answers requests and keeps the cache of pre-signed responses.

    * A serial this CA never issued is answered ``unknown``: RFC 6960 section 2.2 also
      allows ``revoked`` with the extended-revoke extension, but ``unknown`` says plainly that
      we did not issue it. A serial reserved but never recorded as signed is ``unknown`` too:
      certfleet cannot tell whether a certificate exists, and must not say ``good``.
    * An issuer we do not serve, or a request that mixes issuers, gets ``unauthorized``
      (RFC 5019 section 2.2.3): one response has one signer, which vouches for one CA.
    * A request without a nonce is answered from memory when this exact request was
      answered before at the current revocation generation (read from the store first on
      every request: any process or node that revokes changes it in the same transaction),
      so the first request after a revocation already answers ``revoked``. Otherwise a
      single-certificate request comes from the database's pre-signed responses, where a
      cached ``good`` is ignored once a revocation exists (checked in the same read).
    * A request with a nonce always gets a freshly signed response echoing it.
    """

    def __init__(
        self,
        store: RevocationStore,
        index: Callable[[bool], IssuerIndex[CaT]],
        signer: Callable[[CaT], ResponseSigner],
        settings: RevocationSettings,
        clock: Clock,
        *,
        on_generation_change: Callable[[], None] | None = None,
        memory_entries: int = MEMORY_ENTRIES,
    ) -> None:
        self._store = store
        self._index = index
        self._signer = signer
        self._settings = settings
        self._clock = clock
        self._memory = AnswerMemory(memory_entries)
        self._on_generation_change = on_generation_change

    def _generation(self) -> int:
        generation = self._store.generation()
        if self._memory.observe(generation) and self._on_generation_change is not None:
            self._on_generation_change()
        return generation

    def remembered(self, request_der: bytes) -> Published | None:
        """The answer to this exact request from memory, or None: no parsing, no signing and,
        on SQLite unless another connection committed, no database read. Cheap enough for an
        event loop; on None call :meth:`respond` (in a thread: it may sign and query)."""
        return self._memory.get(request_der, self._generation(), self._clock.now())

    def respond(self, request_der: bytes) -> Published:
        # Read before anything else: what is built below reflects at least this generation.
        generation = self._generation()
        remembered = self._memory.get(request_der, generation, self._clock.now())
        if remembered is not None:
            return remembered
        published = self._respond(request_der)
        if published.shared_cache and published.refresh_at is not None:
            self._memory.put(request_der, generation, published)
        return published

    def _respond(self, request_der: bytes) -> Published:
        try:
            request = parse_ocsp_request(request_der)
        except MalformedOcspRequest:
            return Published(error_response(ocsp.OCSPResponseStatus.MALFORMED_REQUEST))
        ca = self._issuer_for(request.cert_ids)
        if ca is None:
            return Published(error_response(ocsp.OCSPResponseStatus.UNAUTHORIZED))
        validity = self._settings.ocsp_validity
        cacheable = len(request.cert_ids) == 1 and request.nonce is None
        if cacheable:
            cert_id = request.cert_ids[0]
            cached = self._store.cached_response(ca.id, _hex(cert_id.serial_number), cert_id.hash_algorithm)
            now = self._clock.now()
            if (
                cached is not None
                and now < refresh_at(cached.this_update, validity)
                and now < cached.next_update
            ):
                refresh = refresh_at(cached.this_update, validity)
                return Published(cached.der, cached.this_update, cached.next_update, refresh)
        answers = [self.answer(ca, cert_id) for cert_id in request.cert_ids]
        response = self.sign(ca, answers, request.nonce)
        known = all(a.status is not CertStatus.UNKNOWN for a in answers)
        if cacheable and known:
            # Unknown answers are not cached: random serials must not fill the table. A
            # relying party never waits for the writers (issuance, a CRL build) to share its
            # answer: when one is writing, the answer is kept in this process's memory only
            # and signed again by the next process asked.
            self._store.save_responses([response], wait=False)
        refresh = min(refresh_at(response.this_update, validity), response.next_update)
        return Published(
            response.der,
            response.this_update,
            response.next_update,
            # No refresh time, no memory: an unknown serial may be issued a moment later.
            refresh if known else None,
            shared_cache=request.nonce is None,
        )

    def _issuer_for(self, cert_ids: Sequence[CertId]) -> CaT | None:
        matched: set[CaT | None] = set()
        for refresh in (False, True):  # a CA created since the index was loaded
            matched = {self._index(refresh).match(c) for c in cert_ids}
            if None not in matched:
                break
        return matched.pop() if len(matched) == 1 else None

    def answer(self, ca: CaT, cert_id: CertId) -> SingleAnswer:
        status = self._store.serial_status(ca.id, _hex(cert_id.serial_number))
        if status is None:
            # Intermediates are not on the serials table until revoked: the root knows them.
            known = self._index(False).child(ca.id, cert_id.serial_number) is not None
            return SingleAnswer(cert_id, CertStatus.GOOD if known else CertStatus.UNKNOWN)
        if status.revocation is not None:
            revocation = status.revocation
            return SingleAnswer(cert_id, CertStatus.REVOKED, revocation.revoked_at, revocation.reason)
        return SingleAnswer(cert_id, CertStatus.GOOD if status.state == "issued" else CertStatus.UNKNOWN)

    def sign(self, ca: CaT, answers: Sequence[SingleAnswer], nonce: bytes | None) -> CachedResponse:
        signer = self._signer(ca)
        now = self._clock.now().replace(microsecond=0)
        # A response must not outlive the certificate that signed it.
        next_update = min(now + self._settings.ocsp_validity, signer.not_after)
        der = build_response(answers, signer, this_update=now, next_update=next_update, nonce=nonce)
        first = answers[0]
        serial = _hex(first.cert_id.serial_number)
        return CachedResponse(
            ca.id, serial, first.cert_id.hash_algorithm, first.status, now, next_update, der
        )

    def presign(self, ca: CaT, now: dt.datetime) -> int:
        """Re-sign the cached responses a third into their validity, at most
        ``presign_batch`` per call; returns how many were signed.

        A new certificate is not signed here: its first nonce-less request signs and caches
        its answer (:meth:`respond`), exactly as a refresh would. Signing every issued
        certificate eagerly cost a quarter of ``serve``'s CPU during bulk issuance, under the
        write lock issuance needs, for answers most certificates are never asked for; what
        is asked for once keeps being refreshed here, so a relying party is never made to
        wait for a signature twice."""
        due_before = now - self._settings.ocsp_validity / 3
        work = self._store.responses_due(ca.id, due_before, self._settings.presign_batch)
        index = self._index(False)
        responses = []
        for serial, algorithm in work:
            answer = self.answer(ca, index.cert_id(ca, int(serial, 16), algorithm))
            if answer.status is not CertStatus.UNKNOWN:
                responses.append(self.sign(ca, [answer], None))
        if responses:
            self._store.save_responses(responses)
        return len(responses)
