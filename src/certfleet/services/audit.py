from __future__ import annotations

from collections.abc import Iterator

from certfleet.audit import AuditEntry, ChainVerdict, verify_chain
from certfleet.services._ports import UnitOfWorkFactory

__all__ = ["AuditService"]


class AuditService:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def entries(self) -> Iterator[AuditEntry]:
        with self._uow(read_only=True) as uow:
            yield from uow.audit.entries()

    def verify(self) -> ChainVerdict:
        with self._uow(read_only=True) as uow:
            head = uow.audit.head()
            return verify_chain(uow.audit.entries(), head)
