"""Which hosts webhooks (monitor alerts, the loop's notifications) may be sent to.

A webhook URL is chosen by whoever creates a monitor or a policy, and the server sends to it: left
open, it lets a client make the server call its own network (a database's HTTP port, a cloud's
metadata service at 169.254.169.254). So a target must resolve only to public addresses, unless
``LOOPLINE_WEBHOOK_ALLOW`` allows it: ``,``-separated host names (``hooks.internal``), addresses
or CIDRs (``10.0.0.0/8``, ``127.0.0.1``), or ``*`` for any target.

The check runs when a monitor or policy is created (a host that does not resolve yet passes there)
and again at each delivery, on the addresses the name resolves to then; the request is sent to the
address that was checked, so a DNS answer that changes in between cannot redirect it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from loopline.errors import InvalidInput

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_DOCS = "Allow it with LOOPLINE_WEBHOOK_ALLOW (a host name, an address or a CIDR) on the server."


class Refused(Exception):
    """The target is not allowed: the message says why."""


@dataclass(frozen=True)
class Allow:
    """``LOOPLINE_WEBHOOK_ALLOW`` parsed."""

    anything: bool
    hosts: frozenset[str]
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    @classmethod
    def parse(cls, setting: str) -> Allow:
        hosts: set[str] = set()
        networks = []
        for item in (s.strip() for s in setting.split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
            except ValueError:
                hosts.add(item.lower().rstrip("."))
        return cls("*" in hosts, frozenset(hosts - {"*"}), tuple(networks))

    def allows_address(self, address: Address) -> bool:
        if self.anything or _public(address):
            return True
        return any(address in n for n in self.networks if n.version == address.version)


def _public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class Target:
    """A checked target: the URL's host name and the address to connect to (None: any, as resolved)."""

    host: str
    address: str | None


def _host(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused("The webhook is not an http(s) URL.")
    return parts.hostname.lower().rstrip(".")


def _resolve(host: str, port: int) -> list[Address]:
    try:
        found = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as e:
        raise LookupError(f"{host} does not resolve: {e}") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in found]


def check_target(url: str, allow: Allow) -> Target:
    """The address to send ``url``'s request to; ``Refused`` if it is not allowed, ``LookupError``
    if its host does not resolve."""
    host = _host(url)
    if allow.anything or host in allow.hosts:
        return Target(host, None)
    try:  # a literal address needs no lookup
        literal: Address | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    port = urlsplit(url).port or (443 if url.lower().startswith("https") else 80)
    addresses = [literal] if literal is not None else _resolve(host, port)
    refused = [a for a in addresses if not allow.allows_address(a)]
    if refused:  # one private answer is enough: the client picks among them
        raise Refused(
            f"The webhook target {host} is refused: it is a loopback, private, link-local or otherwise "
            f"non-public address ({refused[0]}). {_DOCS}"
        )
    return Target(host, str(addresses[0]))


def check_webhooks(urls: Sequence[str], allow_setting: str) -> None:
    """Refuse (400) a webhook whose target is not allowed now; one that does not resolve yet passes
    (it is checked again at each delivery)."""
    allow = Allow.parse(allow_setting)
    for url in urls:
        try:
            check_target(url, allow)
        except Refused as e:
            raise InvalidInput(str(e), hint="Use a public https:// URL for the receiver.") from None
        except LookupError:
            continue
