"""The ``[audit.siem]`` section of ``config.toml``: where the audit log is streamed.

::

    [audit.siem]
    transport = "relp"                # recommended: every entry acknowledged (default "tcp")
    host = "siem.example.net"
    port = 2514                       # the collector's imrelp port (6514: syslog over TLS)
    ca_file = "/etc/certfleet/siem-ca.pem"
    client_cert = "/etc/certfleet/siem-client.pem"   # optional, with client_key
    client_key = "/etc/certfleet/siem-client.key"
    format = "rfc5424"                # or "json" (one object a line)

Defined here rather than beside the sender because ``config`` sits below the services."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from certfleet.config._table import only_subtable, parse_table
from certfleet.errors import ConfigurationError

__all__ = ["AuditSettings", "SiemSettings", "parse_audit_section"]


@dataclass(frozen=True)
class SiemSettings:
    """A collector reached over TCP with TLS; the server's certificate is checked against
    ``ca_file`` and ``host`` (the name it must carry, unless ``server_name`` says another).

    * ``transport``: ``relp`` (RELP over TLS, rsyslog's imrelp: the collector acknowledges
      every entry and the cursor moves only past acknowledged ones; recommended) or ``tcp``
      (the default, syslog over TLS, RFC 5425: no acknowledgement, hence ``replay_entries``).
    * ``format``: ``rfc5424`` (octet-counted frames, RFC 5425) or ``json`` (JSON lines).
    * ``hostname``: the HOSTNAME of each message (default: this machine's name).
    * ``batch_size`` (default 500): entries sent between two cursor updates; with RELP also
      the window of entries sent before their acknowledgements are awaited.
    * ``ack_timeout_seconds`` (default 30, RELP only): how long a window's acknowledgements
      may take; past it the connection is dropped and the unacknowledged entries are sent
      again on the next one.
    * ``replay_entries`` (default 1000, tcp only): after every new connection the last entries sent
      before it are sent again. TCP acknowledges bytes to the kernel, not to the collector:
      what sat in socket buffers when a collector died is lost unless resent, so delivery is
      at least once and a collector may see an entry twice (same seq and hash).
    * ``interval_seconds`` (default 2): how often the sender looks for new entries.
    """

    host: str
    transport: Literal["tcp", "relp"] = "tcp"
    port: int = 6514
    ca_file: str = ""
    client_cert: str | None = None
    client_key: str | None = None
    server_name: str | None = None
    format: Literal["rfc5424", "json"] = "rfc5424"
    hostname: str | None = None
    batch_size: int = 500
    replay_entries: int = 1000
    interval_seconds: float = 2.0
    connect_timeout_seconds: float = 10.0
    ack_timeout_seconds: float = 30.0

    def __post_init__(self) -> None:
        if not self.host:
            raise ConfigurationError("audit.siem.host must name the collector")
        if not 1 <= self.port <= 65535:
            raise ConfigurationError("audit.siem.port must be from 1 to 65535")
        if not self.ca_file:
            raise ConfigurationError(
                "audit.siem.ca_file is required: the CA that signs the collector's certificate"
            )
        for name in ("ca_file", "client_cert", "client_key"):
            value = getattr(self, name)
            if value and not Path(value).is_file():
                raise ConfigurationError(f"audit.siem.{name}: no such file {value}")
        if (self.client_cert is None) != (self.client_key is None):
            raise ConfigurationError("audit.siem: client_cert and client_key go together")
        if not 1 <= self.batch_size <= 10_000:
            raise ConfigurationError("audit.siem.batch_size must be from 1 to 10000")
        if not 0 <= self.replay_entries <= 1_000_000:
            raise ConfigurationError("audit.siem.replay_entries must be from 0 to 1000000")
        if not 0.05 <= self.interval_seconds <= 3600:
            raise ConfigurationError("audit.siem.interval_seconds must be from 0.05 to 3600")
        if not 0.1 <= self.connect_timeout_seconds <= 300:
            raise ConfigurationError("audit.siem.connect_timeout_seconds must be from 0.1 to 300")
        if not 0.1 <= self.ack_timeout_seconds <= 3600:
            raise ConfigurationError("audit.siem.ack_timeout_seconds must be from 0.1 to 3600")


@dataclass(frozen=True)
class AuditSettings:
    """``[audit]``: for now only ``[audit.siem]``; None (absent) streams nothing."""

    siem: SiemSettings | None = None


def parse_audit_section(raw: object, file: str) -> AuditSettings:
    siem = only_subtable(raw, file, "audit", "siem")
    if siem is None:
        return AuditSettings()
    if "host" not in siem:
        raise ConfigurationError(f"{file}: [audit.siem] needs host, port and ca_file")
    return AuditSettings(parse_table(SiemSettings, siem, file, "audit.siem"))
