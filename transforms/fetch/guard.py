"""The address guard: newsbeam connects only to addresses it has resolved and checked itself,
and refuses private, loopback, link-local and reserved networks unless they are allowed (a
feed must not steer a worker to an internal service)."""

from __future__ import annotations

import ipaddress
import socket


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address (IPv4-mapped IPv6 is judged as IPv4)."""
    ip = ipaddress.ip_address(address)  # a scoped IPv6 address (fe80::1%eth0) included
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class AddressRefused(Exception):  # noqa: N818  (a verdict, raised from the connection layer)
    """A connection the address guard or name resolution refused; `reason` is a dead-letter code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def resolve_allowed(host: str, port: int, *, allow_private_networks: bool) -> list[str]:
    """The addresses `host` resolves to, refusing non-public ones unless they are allowed.

    Every resolved address must be allowed: a host with one private record is refused, since
    the connection could otherwise be steered to it.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise AddressRefused("dns_error", f"cannot resolve {host}: {exc}") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not allow_private_networks:
        for address in addresses:
            if not is_public_address(address):
                raise AddressRefused(
                    "blocked_address",
                    f"{host} resolves to non-public address {address}"
                    " (use --allow-private-networks to permit)",
                )
    return addresses


def connect_allowed(host: str, port: int, *, timeout: float,
                    allow_private_networks: bool) -> socket.socket:
    """A socket connected to one of the addresses `host` resolves to, all of them checked
    first (resolve_allowed), tried in the resolver's order.

    The check sits in the connection layer, so it covers every hop of a redirect chain and
    cannot be raced by a second DNS answer (rebinding): the socket goes to the address checked.
    TLS, wrapped around it, still verifies the certificate against the host name.
    """
    addresses = resolve_allowed(host, port, allow_private_networks=allow_private_networks)
    last_error: OSError | None = None
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout)
        except OSError as exc:
            last_error = exc
    assert last_error is not None
    raise last_error
