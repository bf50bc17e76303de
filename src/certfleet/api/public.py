"""The plain-HTTP listener: CA material (and later CRLs and OCSP), nothing secret."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response

from certfleet.api._auth import get_platform
from certfleet.api._body_limit import BodyLimit, BodyLimits
from certfleet.api._ports import Platform
from certfleet.api._problems import install_problem_handlers
from certfleet.api.revocation import public_router as revocation_router
from certfleet.errors import NotFound
from certfleet.metrics import instrument_requests
from certfleet.x509 import to_pem

__all__ = ["create_public_app"]


def create_public_app(platform: Platform) -> FastAPI:
    app = FastAPI(title="certfleet public endpoints", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.platform = platform
    install_problem_handlers(app)
    app.include_router(revocation_router)  # /crl/{ca_id}.crl, /crl/{ca_id}-delta.crl, /ocsp
    instrument_requests(app, platform.metrics)  # OCSP request counters and latencies for /metrics
    app.add_middleware(BodyLimit, limits=BodyLimits(platform.settings.server.max_body_bytes))

    @app.get("/healthz", response_class=PlainTextResponse)
    def healthz() -> str:
        return "ok\n"

    @app.get("/ca/root.pem")
    def root_pem(request: Request) -> Response:
        root = get_platform(request).authorities.root()
        return Response(to_pem([root.certificate]), media_type="application/x-pem-file")

    @app.get("/ca/chain.pem")
    def chain_pem(request: Request) -> Response:
        authority = get_platform(request).authorities.issuing_authority()
        return Response(to_pem(authority.chain), media_type="application/x-pem-file")

    @app.get("/ca/{ca_id}.cer")
    def ca_der(ca_id: str, request: Request) -> Response:
        for ca in get_platform(request).authorities.hierarchy():
            if ca.id == ca_id:
                der = ca.certificate.public_bytes(serialization.Encoding.DER)
                return Response(der, media_type="application/pkix-cert")
        raise NotFound(f"no CA {ca_id!r}")

    return app
