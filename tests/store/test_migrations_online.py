"""Migrations after the baseline only expand the schema (src/certfleet/store/migrations/
README.md): a rolling upgrade migrates while the previous version keeps serving, so no new
revision may drop, rename or retype what that version reads, unless it says it is the
contract step that follows a release which stopped using it."""

from __future__ import annotations

import ast
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic import command

from certfleet.errors import ConfigurationError
from certfleet.store import Database, _database
from tests.services.snapshot import private_database

VERSIONS = Path(_database.__file__).parent / "migrations" / "versions"

# Written before the rule: the schema as it stood when rolling upgrades were first promised.
BASELINE = frozenset(
    {
        "0001",
        "0002_revocation",
        "0003_discovery",
        "0004_acme",
        "0005_policy",
        "0006_notify",
        "0007_lifecycle",
        "0008_agent",
        "0009_web",
        "0014_acme_eab_single_use",
        "0016_campaign_deadline",
        "0017",
        "0018_revocation_generation",
        "0019_renewal_plan",
        "0020_scep",
        "0021_est",
        "0022_spiffe",
    }
)

# Operations that take away or change what the previous version reads or writes.
CONTRACTING = frozenset(
    {
        "drop_table",
        "drop_column",
        "rename_table",
        "drop_constraint",
        "drop_index",
        "drop_table_comment",
        "drop_column_comment",
    }
)
# alter_column is contracting when it changes a type, a name or makes a column NOT NULL.
CONTRACTING_ALTER = frozenset({"type_", "new_column_name", "nullable"})
CONTRACT_MARK = "Contract step:"


def _revision(tree: ast.Module) -> str:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "revision" for t in node.targets
        ):
            assert isinstance(node.value, ast.Constant)
            return str(node.value.value)
    raise AssertionError("no revision")


def _upgrade(tree: ast.Module) -> ast.FunctionDef:
    return next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "upgrade")


def contracting_calls(source: str) -> list[str]:
    """The contracting operations ``upgrade()`` of a migration performs (``downgrade`` may do
    anything: it is the way back)."""
    found = []
    for node in ast.walk(_upgrade(ast.parse(source))):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        name = node.func.attr
        if name in CONTRACTING:
            found.append(name)
        elif name == "alter_column":
            changed = {k.arg for k in node.keywords} & CONTRACTING_ALTER
            nullable = next((k for k in node.keywords if k.arg == "nullable"), None)
            if nullable is not None and isinstance(nullable.value, ast.Constant) and nullable.value.value:
                changed.discard("nullable")  # making a column nullable expands
            if changed:
                found.append(f"alter_column({', '.join(sorted(changed))})")
        elif name == "execute" and node.args and isinstance(node.args[0], ast.Constant):
            sql = str(node.args[0].value).upper()
            if any(word in sql for word in ("DROP ", "RENAME ", " TYPE ", "SET NOT NULL")):
                found.append("execute(" + " ".join(sql.split())[:60] + ")")
    return found


def _migrations() -> list[Path]:
    return sorted(VERSIONS.glob("*.py"))


def test_the_baseline_is_still_there() -> None:
    revisions = {_revision(ast.parse(p.read_text())) for p in _migrations()}
    assert revisions >= BASELINE


def test_every_migration_after_the_baseline_only_expands() -> None:
    offending = []
    for path in _migrations():
        source = path.read_text()
        tree = ast.parse(source)
        contracting = contracting_calls(source)
        if _revision(tree) in BASELINE or not contracting:
            continue
        if CONTRACT_MARK not in (ast.get_docstring(tree) or ""):
            offending.append(f"{path.name}: {', '.join(contracting)}")
    assert not offending, (
        "these migrations contract the schema while the previous version may still be "
        f"serving: {offending}; split each (expand now, contract a release later) and mark the "
        f"later migration '{CONTRACT_MARK} ...' (see src/certfleet/store/migrations/README.md)"
    )


EXPANDING = """
def upgrade() -> None:
    op.create_table("nodes", sa.Column("id", sa.String(64), primary_key=True))
    op.add_column("certificates", sa.Column("note", sa.Text(), nullable=True))
    op.create_index("ix_note", "certificates", ["note"])
    op.alter_column("certificates", "team", nullable=True)

def downgrade() -> None:
    op.drop_table("nodes")
"""


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('op.drop_column("certificates", "team")', ["drop_column"]),
        ('op.drop_table("serials")', ["drop_table"]),
        ('op.rename_table("serials", "serial_numbers")', ["rename_table"]),
        ('op.alter_column("certificates", "team", type_=sa.Text())', ["alter_column(type_)"]),
        (
            'op.alter_column("certificates", "team", new_column_name="owner")',
            ["alter_column(new_column_name)"],
        ),
        ('op.alter_column("certificates", "team", nullable=False)', ["alter_column(nullable)"]),
        (
            'op.execute("ALTER TABLE certificates DROP COLUMN team")',
            ["execute(ALTER TABLE CERTIFICATES DROP COLUMN TEAM)"],
        ),
        (
            'with op.batch_alter_table("certificates") as batch:\n        batch.drop_column("team")',
            ["drop_column"],
        ),
    ],
)
def test_the_rule_sees_each_contracting_operation(body: str, expected: list[str]) -> None:
    assert contracting_calls(f"def upgrade() -> None:\n    {body}\n") == expected


def test_the_rule_lets_expanding_operations_and_any_downgrade_through() -> None:
    assert contracting_calls(EXPANDING) == []


# On PostgreSQL, how ``db upgrade`` shares the database with live nodes and other migrators.


@pytest.fixture
def fresh_pg(pg_database_url: str, tmp_path: Path) -> Iterator[str]:
    with private_database("postgresql", tmp_path, pg_database_url) as url:
        yield url


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://").split("?", 1)[0]


def test_two_migrators_never_run_at_once(fresh_pg: str) -> None:
    database = Database(fresh_pg)
    outcome: list[object] = []
    with psycopg.connect(_plain(fresh_pg), autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (_database._MIGRATION_LOCK,))  # another node migrating
        migrator = threading.Thread(target=lambda: outcome.append(database.upgrade()), daemon=True)
        migrator.start()
        deadline = time.monotonic() + 60
        while not other.execute(
            "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = %s",
            (_database._MIGRATION_LOCK,),
        ).fetchone():
            assert time.monotonic() < deadline and migrator.is_alive(), (
                f"the migrator did not wait: {outcome}"
            )
            time.sleep(0.02)
        assert database.current_revisions() == ()  # it waits, having applied nothing
        other.execute("SELECT pg_advisory_unlock(%s)", (_database._MIGRATION_LOCK,))
    migrator.join(60)
    try:
        assert outcome and outcome[0] == sorted(database.head_revisions())
        assert database.current_revisions() == database.head_revisions()
    finally:
        database.dispose()


def test_a_migration_gives_up_a_table_lock_live_traffic_holds_then_succeeds(fresh_pg: str) -> None:
    database = Database(fresh_pg)
    try:
        database.upgrade()
        command.downgrade(database._alembic_config(), "0007_lifecycle")  # 0016 alters two tables
        schema = fresh_pg.split("search_path%3D", 1)[1]
        with psycopg.connect(_plain(fresh_pg)) as reader:  # a live, long read transaction
            reader.execute(f'LOCK TABLE "{schema}".rotation_campaigns IN ACCESS SHARE MODE')
            with pytest.raises(ConfigurationError, match="lock timeout"):
                database.upgrade(lock_timeout_seconds=0.05)
            # rolled back whole: the lifecycle branch is still where it was, nothing half-applied
            assert "0007_lifecycle" in dict(database.branches()).values()
            reader.rollback()
        database.upgrade()
        assert "0007_lifecycle" not in dict(database.branches()).values()
        assert database.current_revisions() == database.head_revisions()
    finally:
        database.dispose()
