"""The ``certfleet`` command: thin commands over the same services as the API.

This module is the console script's entry point and lists every command; it imports no
typer. ``certfleet``, ``certfleet --help`` and ``certfleet version`` are answered by
:mod:`certfleet.cli._fast` in a few milliseconds (issue 11: start-up at most 8x a bare
interpreter); every other argument list goes to the typer application in
:mod:`certfleet.cli._app`, which imports each command's module only when it is named."""

from __future__ import annotations

import gc
import sys

from certfleet.cli._fast import answer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["COMMANDS", "HELP", "LazyCommand", "main", "run"]


class LazyCommand:
    """``attribute`` of ``module``: a ``typer.Typer`` (a command group) or a command function.
    ``help`` is its first paragraph of help, shown in the parent's command list (a plain
    class: a dataclass would import inspect, a tenth of the start-up budget)."""

    __slots__ = ("attribute", "help", "module")

    def __init__(self, module: str, attribute: str, help: str) -> None:
        self.module = module
        self.attribute = attribute
        self.help = help

    def __repr__(self) -> str:
        return f"LazyCommand({self.module!r}, {self.attribute!r}, {self.help!r})"


HELP = "Certificate lifecycle and machine-identity platform."
# Every subcommand, in the order --help lists them, imported only when named: `certfleet
# ca list` imports the ca command's module and not the ACME server's. --help lists them
# from the one-line help kept here (tests check it is what each command says).
COMMANDS = {
    "init": LazyCommand(
        "certfleet.cli.init", "init", "Create the data directory, database and a root plus issuing CA."
    ),
    "issue": LazyCommand(
        "certfleet.cli.issue",
        "issue",
        "Issue a certificate and write it (and a generated key, mode 0600) to --out.",
    ),
    "serve": LazyCommand(
        "certfleet.cli.serve",
        "serve",
        "Serve the REST API over HTTPS and CA material over HTTP until SIGTERM.",
    ),
    "revoke": LazyCommand(
        "certfleet.cli.revoke",
        "revoke",
        "Revoke a certificate: the CRL and the OCSP responder show it at once.",
    ),
    "version": LazyCommand("certfleet.cli.version", "version", "Print the version."),
    "ca": LazyCommand("certfleet.cli.ca", "app", "The CA hierarchy."),
    "inventory": LazyCommand("certfleet.cli.inventory", "app", "The certificate inventory."),
    "token": LazyCommand("certfleet.cli.tokens", "app", "API tokens."),
    "audit": LazyCommand("certfleet.cli.audit", "app", "The tamper-evident audit log."),
    "db": LazyCommand("certfleet.cli.db", "app", "Database maintenance."),
    "acme": LazyCommand(
        "certfleet.cli.acme", "app", "The ACME server: external account keys and ARI renewal overrides."
    ),
    "scan": LazyCommand("certfleet.cli.scan", "app", "Discover certificates on networks and filesystems."),
    "findings": LazyCommand("certfleet.cli.findings", "app", "Findings of discovery scans."),
    "trust": LazyCommand("certfleet.cli.trust", "app", "Trust stores and CA consolidation."),
    "spiffe": LazyCommand(
        "certfleet.cli.spiffe", "app", "SPIFFE workload identity: trust domain and registration entries."
    ),
    "policy": LazyCommand(
        "certfleet.cli.policy", "app", "Policies as code: rules every certificate must meet."
    ),
    "notify": LazyCommand(
        "certfleet.cli.notify", "app", "Notifications: where events go, and what was delivered."
    ),
    "agent": LazyCommand(
        "certfleet.cli.agent",
        "app",
        "Host agents: join tokens and deployments (server); enroll and run (host).",
    ),
    "rotate": LazyCommand(
        "certfleet.cli.rotate", "app", "Mass rotation campaigns: replace every selected certificate."
    ),
    "crypto": LazyCommand(
        "certfleet.cli.crypto", "app", "The cryptographic inventory: algorithms, quantum exposure, CBOM."
    ),
    "est": LazyCommand("certfleet.cli.est", "app", "EST enrolment (RFC 7030): Basic credentials per team."),
    "scep": LazyCommand(
        "certfleet.cli.scep", "app", "SCEP enrolment (RFC 8894): challenge passwords and approvals."
    ),
    "login": LazyCommand(
        "certfleet.cli.login",
        "login",
        "Log in to a remote certfleet server: pin its root, check the token, save both.",
    ),
    "logout": LazyCommand(
        "certfleet.cli.login", "logout", "Forget the saved login (URL, pinned root and token)."
    ),
    "status": LazyCommand(
        "certfleet.cli.login",
        "status",
        "Where commands go (a remote server, or the local data directory) and as whom.",
    ),
}


def main(argv: list[str] | None = None) -> int:
    """Entry point: a usage error prints the usage and exits 2; a CertfleetError becomes one
    line on stderr and exit 2; anything unexpected one line pointing to a log file holding
    the traceback, and exit 70 (EX_SOFTWARE)."""
    args = sys.argv[1:] if argv is None else list(argv)
    code = answer(args, HELP, {name: entry.help for name, entry in COMMANDS.items()})
    if code is not None:
        return code
    from certfleet.cli._app import run_typer

    return run_typer(args)


def __getattr__(name: str) -> Any:
    # The typer application, imported on first use (tests and the docs build walk it).
    if name in {"app", "_click_command"}:
        from certfleet.cli import _app

        return getattr(_app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def run() -> None:
    """Console-script entry point."""
    try:
        code = main()
    finally:
        # The command is done and the process ends: the interpreter's last garbage
        # collections, as it finalizes, would walk every object the imports made (SQLAlchemy,
        # typer, cryptography) to free memory the exit frees anyway; 0.1-0.25 s of CPU after
        # `scan net` printed its report, a quarter of the command (issue 11). Frozen objects
        # are never collected, so they are skipped. atexit handlers (logging's flush) still
        # run; the commands close their files and databases themselves, never through the
        # collection of a cycle. Here, not in main(): tests call main() in their own process.
        gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
