from __future__ import annotations

import typer

from certfleet.cli._common import DataDirOption, DbOption, settings_for
from certfleet.cli._remote import local_only
from certfleet.store import Database

app = typer.Typer(help="Database maintenance.", no_args_is_help=True)


@app.callback()
def _beside_the_data() -> None:
    local_only("db")


@app.command("upgrade")
def upgrade(data_dir: DataDirOption = None, db: DbOption = None) -> None:
    """Apply pending migrations."""
    settings = settings_for(data_dir, db)
    if settings.is_sqlite:
        settings.data_dir.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    database = Database(settings.database_url)
    try:
        applied = database.upgrade()
        typer.echo(f"applied {', '.join(applied)}" if applied else "database is up to date")
        typer.echo(f"revision {', '.join(database.current_revisions())}")
    finally:
        database.dispose()
