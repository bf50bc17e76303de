"""The ``certfleet`` command: thin commands over the same services as the API."""

from __future__ import annotations

import sys

import click
import typer

from certfleet import __version__
from certfleet.cli import acme, audit, ca, db, findings, inventory, scan, tokens
from certfleet.cli._common import stderr
from certfleet.cli.init import init
from certfleet.cli.issue import issue
from certfleet.cli.revoke import revoke
from certfleet.cli.serve import serve
from certfleet.errors import CertfleetError

__all__ = ["app", "main"]

app = typer.Typer(
    name="certfleet",
    help="Certificate lifecycle and machine-identity platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("init")(init)
app.command("issue")(issue)
app.command("serve")(serve)
app.command("revoke")(revoke)
app.add_typer(ca.app, name="ca")
app.add_typer(inventory.app, name="inventory")
app.add_typer(tokens.app, name="token")
app.add_typer(audit.app, name="audit")
app.add_typer(db.app, name="db")
app.add_typer(acme.app, name="acme")
app.add_typer(scan.app, name="scan")
app.add_typer(findings.app, name="findings")


@app.command("version")
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main(argv: list[str] | None = None) -> int:
    """Entry point: a CertfleetError becomes one line on stderr and exit 2; anything
    unexpected one line and exit 70 (EX_SOFTWARE), never a traceback."""
    try:
        result = app(args=argv, standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        stderr.print("aborted", markup=False)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except CertfleetError as exc:
        stderr.print(f"error: {exc.detail}", markup=False)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the outermost handler: one line, no traceback
        stderr.print(f"internal error: {type(exc).__name__}: {exc}", markup=False)
        return 70
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
