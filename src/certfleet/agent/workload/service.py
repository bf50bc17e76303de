"""The SPIFFE Workload API's five calls over the agent's SVID cache.

Every call must carry the ``workload.spiffe.io: true`` metadata (else INVALID_ARGUMENT: it
proves the caller meant to reach a Workload API, not some proxy replaying requests); the
SVID calls attest the caller on every call and answer PERMISSION_DENIED when no entry
matches its selectors. The service is registered under its unpackaged name
``SpiffeWorkloadAPI`` as every client expects (see _proto/__init__.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from certfleet.agent.workload._proto import workload_pb2 as pb
from certfleet.agent.workload.attestation import ExecutableHashes, Workload
from certfleet.agent.workload.cache import SvidCache, X509Svid
from certfleet.agent.workload.errors import AttestationFailed
from certfleet.agent.workload.front import AttestingFront
from certfleet.agent.workload.jwt import JwtInvalid, validate_jwt_svid
from certfleet.agent.workload.source import RegistrationEntry
from certfleet.errors import CertfleetError

__all__ = ["SERVICE", "WorkloadApi"]

SERVICE = "SpiffeWorkloadAPI"
_log = logging.getLogger("certfleet.agent.workload")


class WorkloadApi:
    def __init__(self, cache: SvidCache, front: AttestingFront) -> None:
        self._cache = cache
        self._front = front
        self._hashes = ExecutableHashes()

    def handler(self) -> grpc.GenericRpcHandler:
        def stream(method: Callable[..., Any], request: Any) -> Any:
            return grpc.unary_stream_rpc_method_handler(
                method, request.FromString, lambda m: m.SerializeToString()
            )

        def unary(method: Callable[..., Any], request: Any) -> Any:
            return grpc.unary_unary_rpc_method_handler(
                method, request.FromString, lambda m: m.SerializeToString()
            )

        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "FetchX509SVID": stream(self.fetch_x509_svid, pb.X509SVIDRequest),
                "FetchX509Bundles": stream(self.fetch_x509_bundles, pb.X509BundlesRequest),
                "FetchJWTSVID": unary(self.fetch_jwt_svid, pb.JWTSVIDRequest),
                "FetchJWTBundles": stream(self.fetch_jwt_bundles, pb.JWTBundlesRequest),
                "ValidateJWTSVID": unary(self.validate_jwt_svid, pb.ValidateJWTSVIDRequest),
            },
        )

    # -- checks -----------------------------------------------------------------------------

    async def _check_header(self, context: grpc.aio.ServicerContext) -> None:
        metadata = dict(context.invocation_metadata() or ())
        if metadata.get("workload.spiffe.io") != "true":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "security header missing from request")

    async def _attest(self, context: grpc.aio.ServicerContext) -> Workload:
        caller = self._front.caller(context.peer())
        if caller is None:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "the caller was not attested")
        assert caller is not None
        try:
            # A few system calls on the loop; reading and hashing a new binary in a thread.
            workload = caller.attest(self._hashes, may_hash=False)
            if workload is None:
                workload = await asyncio.to_thread(caller.attest, self._hashes)
            assert workload is not None
            return workload
        except AttestationFailed as exc:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, exc.detail)
            raise

    async def _entries(self, context: grpc.aio.ServicerContext) -> list[RegistrationEntry]:
        await self._check_header(context)
        workload = await self._attest(context)
        entries = self._cache.matching(workload.selectors)
        if not entries:
            _log.info("Workload API: no identity for %s", sorted(workload.selectors))
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "no identity issued")
        return entries

    # -- X.509 ------------------------------------------------------------------------------

    def _bundle_der(self) -> bytes:
        bundle = self._cache.bundle
        return b"".join(bundle.x509_authorities_der) if bundle is not None else b""

    def _td_id(self) -> str:
        bundle = self._cache.bundle
        return f"spiffe://{bundle.trust_domain}" if bundle is not None else ""

    async def fetch_x509_svid(self, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        """The full set on connect, then again whenever it changes (rotation at half
        lifetime, a new or deleted entry, a new bundle)."""
        sent: tuple[tuple[bytes, ...], bytes] | None = None
        while True:
            changed = self._cache.changed()
            entries = await self._entries(context)
            svids = self._cache.x509_svids(entries)
            bundle = self._bundle_der()
            now = (tuple(s.chain_der[0] for s in svids), bundle)
            if svids and bundle and now != sent:
                yield pb.X509SVIDResponse(svids=[self._x509(s, bundle) for s in svids])
                sent = now
            await changed.wait()

    @staticmethod
    def _x509(svid: X509Svid, bundle: bytes) -> Any:
        return pb.X509SVID(
            spiffe_id=svid.entry.spiffe_id,
            x509_svid=b"".join(svid.chain_der),
            x509_svid_key=svid.key_der,
            bundle=bundle,
        )

    async def fetch_x509_bundles(self, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        """Bundles are public: any caller with the header gets them (SPIRE does the same)."""
        await self._check_header(context)
        sent = b""
        while True:
            changed = self._cache.changed()
            bundle = self._bundle_der()
            if bundle and bundle != sent:
                yield pb.X509BundlesResponse(bundles={self._td_id(): bundle})
                sent = bundle
            await changed.wait()

    # -- JWT --------------------------------------------------------------------------------

    async def fetch_jwt_svid(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        if not request.audience:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "audience must be specified")
        entries = await self._entries(context)
        if request.spiffe_id:
            entries = [e for e in entries if e.spiffe_id == request.spiffe_id]
            if not entries:
                await context.abort(
                    grpc.StatusCode.PERMISSION_DENIED, f"no identity issued for {request.spiffe_id}"
                )
        svids = []
        for entry in entries:
            try:
                jwt = await self._cache.jwt_svid(entry, list(request.audience))
            except CertfleetError as exc:
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"could not fetch JWT-SVID: {exc.detail}")
                raise
            svids.append(pb.JWTSVID(spiffe_id=jwt.spiffe_id, svid=jwt.token))
        return pb.JWTSVIDResponse(svids=svids)

    def _jwks(self) -> bytes:
        bundle = self._cache.bundle
        return json.dumps(dict(bundle.jwt_keys)).encode() if bundle is not None else b""

    async def fetch_jwt_bundles(self, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        await self._check_header(context)
        sent = b""
        while True:
            changed = self._cache.changed()
            jwks = self._jwks()
            if jwks and jwks != sent:
                yield pb.JWTBundlesResponse(bundles={self._td_id(): jwks})
                sent = jwks
            await changed.wait()

    async def validate_jwt_svid(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self._check_header(context)
        if not request.audience:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "audience must be specified")
        if not request.svid:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "svid must be specified")
        bundle = self._cache.bundle
        if bundle is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "no trust bundle yet")
        assert bundle is not None
        try:
            spiffe_id, claims = validate_jwt_svid(
                request.svid, request.audience, bundle.trust_domain, bundle.jwt_keys, self._cache.now()
            )
        except JwtInvalid as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, exc.detail)
            raise
        response = pb.ValidateJWTSVIDResponse(spiffe_id=spiffe_id)
        response.claims.update(claims)
        return response
