"""Client addresses as a key for limits kept with the data.

A limit per client address (the holds one address may have on a set) needs
the address stored with what it limits, and an address is personal data. So
the database keeps a key instead: HMAC-SHA256 with the app's SECRET_KEY over
the client's network, cut to 128 bits (32 hex characters). The same client
always gets the same key; the key cannot be turned back into an address by
hashing all 2^32 IPv4 addresses without the secret; and rotating the secret
only forgets who held what (holds last minutes).

The client's network: an IPv4 address is one client (a venue's NAT is one
client too: the limits built on this are shares, not fixed counts); an IPv6
client is given a whole /64 by its provider and picks addresses in it at
will (privacy addresses), so an IPv6 address counts as its /64; an
IPv4-mapped IPv6 address as the IPv4 address. The address is the one the app
already resolved (`request.remote_addr`, behind TRUSTED_PROXY_HOPS proxies
the client's own); the caller passes it in.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress

from flask import current_app

KEY_LENGTH = 32  # hex characters: 128 bits


def client_network(address: str) -> str:
    """What counts as one client: the IPv4 address, the IPv6 /64 (anything else as it is)."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return address.strip()
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


def address_key(address: str | None) -> str | None:
    """The keyed hash of the client's network, or None without an address."""
    if not address:
        return None
    secret = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(secret, b"client-address:" + client_network(address).encode(), hashlib.sha256)
    return digest.hexdigest()[:KEY_LENGTH]
