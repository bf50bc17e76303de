"""The ``certfleet`` command: thin commands over the same services as the API."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click
import typer

from certfleet import __version__
from certfleet.cli import acme, audit, ca, db, findings, inventory, scan, tokens
from certfleet.cli import agent as agent_cli
from certfleet.cli import notify as notify_cli
from certfleet.cli import policy as policy_cli
from certfleet.cli import rotate as rotate_cli
from certfleet.cli._common import one_line, stderr
from certfleet.cli.ca_rotation import compromise as ca_compromise
from certfleet.cli.ca_rotation import rotate as ca_rotate
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
ca.app.command("rotate")(ca_rotate)
ca.app.command("compromise")(ca_compromise)
app.add_typer(ca.app, name="ca")
app.add_typer(inventory.app, name="inventory")
app.add_typer(tokens.app, name="token")
app.add_typer(audit.app, name="audit")
app.add_typer(db.app, name="db")
app.add_typer(acme.app, name="acme")
app.add_typer(scan.app, name="scan")
app.add_typer(findings.app, name="findings")
app.add_typer(policy_cli.app, name="policy")
app.add_typer(notify_cli.app, name="notify")
app.add_typer(agent_cli.app, name="agent")
app.add_typer(rotate_cli.app, name="rotate")


@app.command("version")
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@functools.cache
def _click_command() -> Callable[..., Any]:
    # Building the click tree from the type hints costs about 0.1 s a call; tests run the
    # CLI in-process hundreds of times, so it is built once (all commands are registered at
    # import time, above).
    return typer.main.get_command(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point: a CertfleetError becomes one line on stderr and exit 2; anything
    unexpected one line and exit 70 (EX_SOFTWARE), never a traceback."""
    try:
        result = _click_command()(args=argv, prog_name="certfleet", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        stderr.print("aborted", markup=False)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except CertfleetError as exc:
        stderr.print(f"error: {one_line(exc.detail)}", markup=False)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the outermost handler: one line, no traceback
        stderr.print(f"internal error: {type(exc).__name__}: {one_line(str(exc))}", markup=False)
        return 70
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
