"""``certfleet agent``: on the server, join tokens, the agent list, revocation and where
agents deployed what; on a host, ``enroll`` and ``run``."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated, Any
from urllib.parse import quote  # a name is one path segment: "/" or "?" must not change the route

import typer

from certfleet.agent import DEFAULT_STATE_DIR, AgentState, Runner, enroll, load_config
from certfleet.agent.client import ServerClient
from certfleet.agent.errors import NotEnrolled
from certfleet.cli._common import (
    CreateFormatOption,
    DataDirOption,
    DbOption,
    Format,
    FormatOption,
    emit,
    emit_document,
    platform,
    stderr,
)
from certfleet.cli._listing import listing_rows
from certfleet.cli._remote import local_only, remote_server
from certfleet.clock import SystemClock
from certfleet.errors import InvalidInput
from certfleet.lifecycle.planning import parse_duration
from certfleet.x509 import fingerprint_sha256

app = typer.Typer(
    help="Host agents: join tokens and deployments (server); enroll and run (host).", no_args_is_help=True
)
token_app = typer.Typer(help="One-time join tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")

StateDirOption = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        envvar="CERTFLEET_AGENT_STATE_DIR",
        help=f"Agent state directory (default: the config's state_dir, else {DEFAULT_STATE_DIR}).",
        show_default=False,
    ),
]


# -- on the server ----------------------------------------------------------------------------


@token_app.command("create")
def token_create(
    host: Annotated[str, typer.Option("--host", help="The host (DNS name) the agent will be.")],
    team: Annotated[
        str | None, typer.Option("--team", help="Team owning the agent and its certificates.")
    ] = None,
    ttl: Annotated[str, typer.Option("--ttl", help="How long the token stays usable (s, m, h, d).")] = "1h",
    allow_names: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-names", help="Name pattern the agent may have issued (*.x, **.x, CIDR); repeat."
        ),
    ] = None,
    fmt: CreateFormatOption = Format.TABLE,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Print a one-time join token for HOST (only its hash is stored)."""
    server = remote_server()
    if server is not None:
        body = {"host": host, "team": team, "ttl": ttl, "allow_names": allow_names or []}
        created: dict[str, Any] = server.request("POST", "/api/v1/agents/join-tokens", json=body)
    else:
        with platform(data_dir, db) as p:
            minted = p.agents.create_join_token(
                host, team=team, ttl=parse_duration(ttl), allow_names=allow_names or [], actor="cli"
            )
            # The root agents pin: the listener's classic root over an ML-DSA default root.
            root = p.authorities.tls_root() or p.authorities.root()
        created = {**minted.to_dict(), "ca_fingerprint": fingerprint_sha256(root.certificate)}
    if fmt is Format.JSON:
        emit_document(created)
        return
    sys.stdout.write(created["token"] + "\n")
    stderr.print(
        f"for host {created['host']}, usable once until {created['expires_at']}; "
        f"enrol with --ca-fingerprint {created['ca_fingerprint']}",
        markup=False,
    )


@app.command("list")
def list_agents(
    fmt: FormatOption = Format.TABLE, data_dir: DataDirOption = None, db: DbOption = None
) -> None:
    """Enrolled agents."""
    rows = listing_rows(
        "/api/v1/agents", lambda p: [a.to_dict() for a in p.agents.list_agents()], data_dir, db
    )
    emit(rows, ["name", "team", "status", "allow_names", "enrolled_at", "last_seen", "revoked_at"], fmt)


@app.command("revoke")
def revoke(
    name: Annotated[str, typer.Argument(help="The agent (host name).")],
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Refuse the agent from now on and revoke its identity certificates."""
    server = remote_server()
    if server is not None:
        server.request("POST", f"/api/v1/agents/{quote(name, safe='')}/revoke")
    else:
        with platform(data_dir, db) as p:
            p.agents.revoke(name, actor="cli")
    typer.echo(f"agent {name} revoked")


@app.command("deployments")
def deployments(
    host: Annotated[str | None, typer.Option("--host", help="Only this agent.")] = None,
    history: Annotated[bool, typer.Option("--history", help="Every report, not only the latest.")] = False,
    fmt: FormatOption = Format.TABLE,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Where agents deployed certificates: host, paths, endpoint and outcome."""
    params = {"host": host, "history": "true" if history else None}
    rows = listing_rows(
        "/api/v1/agents/deployments",
        lambda p: [d.to_dict() for d in p.agents.deployments(host, latest=not history)],
        data_dir,
        db,
        params=params,
    )
    emit(rows, ["host", "name", "serial", "status", "paths", "endpoint", "reported_at", "detail"], fmt)


# -- on a host --------------------------------------------------------------------------------


def _state_dir(option: Path | None, configured: Path | None = None) -> AgentState:
    return AgentState((option or configured or DEFAULT_STATE_DIR).absolute())


@app.command("enroll")
def enroll_command(
    server: Annotated[str, typer.Option("--server", help="HTTPS URL of the certfleet API.")],
    token: Annotated[
        str, typer.Option("--token", help="The one-time join token.", envvar="CERTFLEET_JOIN_TOKEN")
    ],
    ca_fingerprint: Annotated[
        str, typer.Option("--ca-fingerprint", help="SHA-256 of certfleet's root CA, to pin it.")
    ],
    state_dir: StateDirOption = None,
) -> None:
    """Enrol this host: generate the agent key here and obtain its mTLS identity."""
    state = _state_dir(state_dir)
    enrolment = enroll(server, token, ca_fingerprint, state)
    typer.echo(f"enrolled as {enrolment.host} (state in {state.root})")


def _logging() -> None:
    logging.basicConfig(
        level=os.environ.get("CERTFLEET_AGENT_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )


@app.command("run")
def run(
    config: Annotated[Path, typer.Option("--config", help="The agent's YAML configuration.")],
    once: Annotated[
        bool, typer.Option("--once", help="One pass, then exit (1 if any certificate failed).")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Renew every certificate now.")] = False,
    force_cert: Annotated[
        list[str] | None, typer.Option("--force-cert", help="Renew this certificate now; repeat.")
    ] = None,
    renew_identity: Annotated[
        bool, typer.Option("--renew-identity", help="Renew the agent's own identity now.")
    ] = False,
    state_dir: StateDirOption = None,
) -> None:
    """Keep the configured certificates current, until SIGTERM (or once)."""
    local_only("agent run")
    _logging()
    parsed = load_config(config)
    state = _state_dir(state_dir, parsed.state_dir)
    state.ensure()
    client = None
    server = parsed.server
    try:
        enrolment = state.enrolment()
    except NotEnrolled as exc:
        if any(spec.acme is None for spec in parsed.certificates):
            raise
        if parsed.spiffe is not None and not once:
            raise NotEnrolled(
                f"{config} serves the SPIFFE Workload API, whose SVIDs come from the certfleet server: "
                "enrol this host first (certfleet agent enroll)"
            ) from exc
        enrolment = None
    if enrolment is not None:
        if server is not None and server != enrolment.server:
            raise InvalidInput(f"this host is enrolled with {enrolment.server}, but {config} names {server}")
        server = enrolment.server
        client = ServerClient(server, state.ca_file, state.identity_file)
    runner = Runner(parsed, state, SystemClock(), client=client)
    forced: bool | set[str] = True if force else set(force_cert or [])
    unknown = set(force_cert or []) - {spec.name for spec in parsed.certificates}
    if unknown:
        raise InvalidInput(f"--force-cert names no configured certificate: {', '.join(sorted(unknown))}")
    if once:
        outcomes = runner.run_once(forced, renew_identity_now=renew_identity)
        for outcome in outcomes:
            line = f"{outcome.name}: {outcome.status}"
            if outcome.fingerprint:
                line += f" {outcome.fingerprint[:16]}"
            typer.echo(line + (f" ({outcome.detail})" if outcome.detail else ""))
        if any(o.failed for o in outcomes):
            raise typer.Exit(1)
        return
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    endpoint = None
    if parsed.spiffe is not None and server is not None:
        # Imported here: grpc costs start-up time that --once and the other commands never need.
        from certfleet.agent.workload import ServerSvidSource, WorkloadEndpoint

        source = ServerSvidSource(server, state.ca_file, state.identity_file)
        endpoint = WorkloadEndpoint(
            parsed.spiffe.socket, source, SystemClock(), trust_domain=parsed.spiffe.trust_domain
        )
        endpoint.start()
    try:
        if renew_identity:
            runner.run_once(forced, renew_identity_now=True)
        runner.run_forever(stop)
    finally:
        if endpoint is not None:
            endpoint.stop()
