"""The address a request really came from, when DeskOps sits behind reverse
proxies.

A proxy puts the address of its own peer at the right end of `X-Forwarded-For`
(nginx's `$proxy_add_x_forwarded_for`), after whatever the client sent. So the
header is read from the right, and only as far as the hops are proxies listed in
`TRUSTED_PROXIES`: the first address that is not one of them is the client. Anything
left of it was written by the client and may be forged. A request whose peer is not
a trusted proxy is taken at its word (its `REMOTE_ADDR`), whatever headers it sends.
"""

import ipaddress
import logging
from functools import lru_cache

from django.conf import settings

logger = logging.getLogger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Hops read from the right of X-Forwarded-For at most: a chain of proxies is short,
# and a client must not make the server parse an arbitrarily long header.
MAX_HOPS = 20


@lru_cache(maxsize=8)
def trusted_networks(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """The networks of `TRUSTED_PROXIES` (single addresses become /32 or /128).
    A wrong entry is a configuration error and stops the process at the first
    request rather than silently trusting nothing."""
    networks = []
    for entry in entries:
        entry = entry.strip()
        if entry:
            networks.append(ipaddress.ip_network(entry, strict=False))
    return tuple(networks)


def _parse(value: str) -> IPAddress | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1 : value.index("]")]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    # An IPv4 client seen through an IPv6 socket: compare and record it as IPv4.
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def _trusted(address: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def client_ip(request) -> str | None:
    """The client's address as a string, or None when the request has no usable
    peer address (a Unix socket with no proxy in front: the audit fields hold IP
    addresses only). Never raises on what a client sends."""
    peer = _parse(request.META.get("REMOTE_ADDR") or "")
    if peer is None:
        return None
    networks = trusted_networks(tuple(getattr(settings, "TRUSTED_PROXIES", ()) or ()))
    if not networks or not _trusted(peer, networks):
        return str(peer)
    header = request.META.get("HTTP_X_FORWARDED_FOR", "")
    hops = [hop for hop in header.split(",")[-MAX_HOPS:] if hop.strip()]
    nearest = peer
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            # A trusted proxy always writes a real address, so a malformed hop came
            # from the client side: stop at the last address known to be true.
            logger.debug("malformed X-Forwarded-For hop %r from %s", hop[:64], peer)
            break
        if not _trusted(address, networks):
            return str(address)
        nearest = address
    # Every hop was a trusted proxy (or the chain broke): the nearest one we can
    # vouch for is the best answer.
    return str(nearest)
