"""The address guard: newsbeam connects only to addresses it has resolved and checked itself,
and refuses private, loopback, link-local and reserved networks unless they are allowed (a
feed must not steer a worker to an internal service)."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import httpcore


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


class GuardedBackend(httpcore.NetworkBackend):
    """Resolves names itself and connects only to addresses it has checked.

    The check sits in the connection layer, so it covers every hop of a redirect chain and
    cannot be raced by a second DNS answer (rebinding): the socket goes to the address checked.
    TLS still verifies the certificate against the host name of the request.
    """

    def __init__(self, allow_private_networks: bool) -> None:
        self._allow_private_networks = allow_private_networks
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self, host: str, port: int, timeout: float | None = None,
        local_address: str | None = None, socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        addresses = resolve_allowed(
            host, port, allow_private_networks=self._allow_private_networks
        )
        last_error: Exception | None = None
        for address in addresses:
            try:
                return self._inner.connect_tcp(address, port, timeout, local_address,
                                               socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        assert last_error is not None
        raise last_error

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        raise AddressRefused("blocked_address", "unix sockets are never fetched")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)
