"""Where challenge validation may connect.

http-01 and tls-alpn-01 make certfleet open a connection to an address the client chose (a
DNS name it controls, or an ``ip`` identifier). Without a limit, anyone with an ACME account
could make the server probe its own internal networks or the cloud metadata service. The
check runs on the resolved address, and the validator then connects to that very address
(an IP literal, never the name again), so DNS rebinding between check and connect cannot
move the connection elsewhere.

Some ranges are always denied: nothing legitimate is validated there, and they are the
classic server-side request forgery targets. An administrator adds more with
``[acme] deny_networks``; loopback and private ranges stay allowed unless listed, because
tests and private PKIs validate there.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from certfleet.config import AcmeSettings
from certfleet.protocols.acme.problems import AcmeProblem

__all__ = ["ALWAYS_DENIED", "NetworkPolicy"]

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALWAYS_DENIED: tuple[IpNetwork, ...] = (
    ipaddress.ip_network("169.254.0.0/16"),  # IPv4 link-local, with metadata at 169.254.169.254
    ipaddress.ip_network("fe80::/10"),  # IPv6 link-local
    ipaddress.ip_network("fd00:ec2::254/128"),  # the EC2 metadata service over IPv6
    ipaddress.ip_network("0.0.0.0/8"),  # "this host": a connection to 0.0.0.0 reaches the server
    ipaddress.ip_network("::/128"),  # the unspecified address, the same trap over IPv6
)


class NetworkPolicy:
    """The denied ranges: :data:`ALWAYS_DENIED` plus the administrator's."""

    def __init__(self, extra_denied: Sequence[IpNetwork] = ()) -> None:
        self.denied: tuple[IpNetwork, ...] = (*ALWAYS_DENIED, *extra_denied)

    @classmethod
    def from_settings(cls, settings: AcmeSettings) -> NetworkPolicy:
        return cls(settings.deny_networks)

    def denied_by(self, address: str) -> IpNetwork | None:
        """The denied range holding ``address`` (an IPv4-mapped IPv6 address is judged as
        the IPv4 address it reaches), or ``None`` when validation may connect there."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return next((net for net in self.denied if ip.version == net.version and ip in net), None)

    def check(self, address: str, name: str) -> None:
        """Raise ``connection`` when ``address`` (resolved for ``name``) is denied."""
        network = self.denied_by(address)
        if network is not None:
            raise AcmeProblem(
                "connection",
                f"{address} (the address of {name}) is in a denied network ({network}): "
                "certfleet does not connect there to validate",
            )
