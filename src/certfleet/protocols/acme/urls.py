"""The server's URLs, built from the base the client reached (``https://host:port/acme``) so
that every URL in a response is one the client can use, and the JWS ``url`` and ``kid``
headers can be compared with them exactly (RFC 8555 sections 6.4 and 7.1)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AcmeUrls"]


@dataclass(frozen=True)
class AcmeUrls:
    base: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "base", self.base.rstrip("/"))

    def directory(self) -> str:
        return f"{self.base}/directory"

    def new_nonce(self) -> str:
        return f"{self.base}/new-nonce"

    def new_account(self) -> str:
        return f"{self.base}/new-account"

    def new_order(self) -> str:
        return f"{self.base}/new-order"

    def revoke_cert(self) -> str:
        return f"{self.base}/revoke-cert"

    def key_change(self) -> str:
        return f"{self.base}/key-change"

    def renewal_info(self) -> str:
        return f"{self.base}/renewal-info"

    def terms(self) -> str:
        return f"{self.base}/terms"

    def account(self, account_id: str) -> str:
        return f"{self.base}/acct/{account_id}"

    def account_orders(self, account_id: str) -> str:
        return f"{self.base}/acct/{account_id}/orders"

    def order(self, order_id: str) -> str:
        return f"{self.base}/order/{order_id}"

    def finalize(self, order_id: str) -> str:
        return f"{self.base}/order/{order_id}/finalize"

    def authz(self, authz_id: str) -> str:
        return f"{self.base}/authz/{authz_id}"

    def challenge(self, challenge_id: str) -> str:
        return f"{self.base}/chall/{challenge_id}"

    def certificate(self, order_id: str) -> str:
        return f"{self.base}/cert/{order_id}"

    def account_id_of(self, kid: str) -> str | None:
        """The account id in a ``kid`` that is one of this server's account URLs."""
        prefix = f"{self.base}/acct/"
        if not kid.startswith(prefix):
            return None
        rest = kid[len(prefix) :]
        return rest if rest and "/" not in rest and "?" not in rest else None
