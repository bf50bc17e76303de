"""Repository of the policy area (implements ``certfleet.policy.PolicyRepository``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError as SqlIntegrityError
from sqlalchemy.orm import Session

from certfleet.errors import Conflict
from certfleet.policy import PolicyVersion
from certfleet.store._policy_models import PolicyVersionRow

__all__ = ["SqlPolicyRepository"]


def _version(row: PolicyVersionRow) -> PolicyVersion:
    return PolicyVersion(row.version, row.created_at, row.actor, row.sha256, row.rule_count, row.document)


class SqlPolicyRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def latest_version(self) -> int | None:
        value = self._session.scalar(select(func.max(PolicyVersionRow.version)))
        return int(value) if value is not None else None

    def get(self, version: int) -> PolicyVersion | None:
        row = self._session.get(PolicyVersionRow, version)
        return _version(row) if row is not None else None

    def add(self, version: PolicyVersion) -> None:
        try:
            with self._session.begin_nested():
                self._session.add(
                    PolicyVersionRow(
                        version=version.version,
                        created_at=version.created_at,
                        actor=version.actor,
                        sha256=version.sha256,
                        rule_count=version.rule_count,
                        document=version.document,
                    )
                )
                self._session.flush()
        except SqlIntegrityError as exc:
            raise Conflict(f"policy version {version.version} was applied concurrently: try again") from exc

    def history(self, limit: int) -> Sequence[PolicyVersion]:
        stmt = select(PolicyVersionRow).order_by(PolicyVersionRow.version.desc()).limit(limit)
        return [_version(r) for r in self._session.scalars(stmt)]
