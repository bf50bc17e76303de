"""What an endpoint returns: status, body, content type and headers, free of any web
framework (the router in ``certfleet.api.acme`` turns it into an HTTP response)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from certfleet.protocols.acme.problems import PROBLEM_CONTENT_TYPE, AcmeProblem

__all__ = ["AcmeResponse", "problem_response"]


@dataclass
class AcmeResponse:
    status: int
    body: dict[str, Any] | bytes | None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, body: dict[str, Any], status: int = 200, **headers: str) -> AcmeResponse:
        return cls(status, body, headers=_header_names(headers))

    def link(self, url: str, rel: str) -> AcmeResponse:
        value = f'<{url}>;rel="{rel}"'
        existing = self.headers.get("Link")
        self.headers["Link"] = f"{existing}, {value}" if existing else value
        return self


def _header_names(headers: dict[str, str]) -> dict[str, str]:
    return {"-".join(p.capitalize() for p in k.split("_")): v for k, v in headers.items()}


def problem_response(problem: AcmeProblem) -> AcmeResponse:
    return AcmeResponse(
        problem.http_status, problem.to_json(), PROBLEM_CONTENT_TYPE, headers=dict(problem.headers)
    )
